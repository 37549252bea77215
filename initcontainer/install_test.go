package initcontainer

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshinit/meshinit/api"
)

// Empty reports whether nothing of ours is present.
func (s State) Empty() bool { return len(s.Chains) == 0 && len(s.Rules) == 0 }

func fakeInstaller(k *fakeKernel) (*Installer, *[]time.Duration) {
	var sleeps []time.Duration
	return &Installer{Runner: k, Backend: &Backend{Name: "nft"}, sys: &fakeSystem{},
		sleep: func(d time.Duration) { sleeps = append(sleeps, d) }}, &sleeps
}

func TestInstallReadsAppliesAndVerifies(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	res, err := in.Install(context.Background(), everything(), testHost)
	if err != nil {
		t.Fatal(err)
	}
	// The families run side by side, each in order: read, restore, read back.
	want := map[string][]string{
		"iptables":  {"iptables-nft-save", "iptables-nft-restore --noflush --wait 5", "iptables-nft-save"},
		"ip6tables": {"ip6tables-nft-save", "ip6tables-nft-restore --noflush --wait 5", "ip6tables-nft-save"},
	}
	if got := byFamily(k.calls); !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	if !res.PassthroughAddress || len(res.Families) != 2 || !res.Families[0].Changed {
		t.Errorf("result = %+v", res)
	}

	k.calls = nil
	res, err = in.Install(context.Background(), everything(), testHost)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"iptables-nft-save", "ip6tables-nft-save"}; !reflect.DeepEqual(k.calls, want) {
		t.Errorf("re-run calls = %q, want only the reads %q", k.calls, want)
	}
	if res.Families[0].Changed || res.PassthroughAddress {
		t.Errorf("re-run changed something: %+v", res)
	}
}

func TestInstallRollsBackWhenIPv6Fails(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	sys := in.sys.(*fakeSystem)
	if _, err := in.Install(context.Background(), api.DefaultTransparentProxyConfig(), testHost); err != nil {
		t.Fatal(err)
	}
	before, _ := ParseState(k.families["iptables"].save())
	k.fail = func(name string, _ int) error {
		if name == "ip6tables-nft-restore" {
			return &CommandError{Command: name, ExitCode: 1, Stderr: "line 2 failed"}
		}
		return nil
	}
	_, err := in.Install(context.Background(), everything(), testHost)
	if err == nil || !strings.Contains(err.Error(), "ipv6: ip6tables-nft-restore exited with status 1: line 2 failed") {
		t.Fatalf("error = %v", err)
	}
	// Tables the failed install created stay, empty, as in the kernel; the rules of ours are back.
	if after, _ := ParseState(k.families["iptables"].save()); !after.Satisfies(before) {
		t.Errorf("IPv4 was not rolled back to the previous install:\n--- before\n%+v\n--- after\n%+v", before, after)
	}
	if !sys.passthrough {
		t.Error("the failed re-install removed the ::6 address the first install added")
	}
}

func TestInstallRetriesOnlyTransientFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exitCode  int
		stderr    string
		failures  int
		wantErr   bool
		wantSleep []time.Duration
	}{
		// Both families' restores run in each attempt, so each attempt consumes two failures; the
		// attempts are sleepBetweenRetries apart.
		{name: "lock busy, then free", exitCode: 4, stderr: "Another app is currently holding the xtables lock", failures: 4,
			wantSleep: []time.Duration{300 * time.Millisecond, 300 * time.Millisecond}},
		{name: "lock busy beyond the retries", exitCode: 4, stderr: "Another app is currently holding the xtables lock", failures: 10,
			wantErr: true, wantSleep: []time.Duration{300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}},
		{name: "a bad rule is not retried", exitCode: 2, stderr: "Bad argument", failures: 1, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel()
			in, sleeps := fakeInstaller(k)
			failed := 0
			k.fail = func(name string, _ int) error {
				if strings.HasSuffix(name, "-restore") && failed < tc.failures {
					failed++
					return &CommandError{Command: name, ExitCode: tc.exitCode, Stderr: tc.stderr}
				}
				return nil
			}
			cfg := api.DefaultTransparentProxyConfig()
			cfg.Retry.SleepBetweenRetries = api.Duration(300 * time.Millisecond)
			_, err := in.Install(context.Background(), cfg, testHost)
			if (err != nil) != tc.wantErr {
				t.Errorf("error = %v, want error %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(*sleeps, tc.wantSleep) {
				t.Errorf("waited %v, want %v", *sleeps, tc.wantSleep)
			}
		})
	}
}

// manglingKernel prints rules back differently from how they were written, as a kernel that
// silently dropped a match would.
type manglingKernel struct{ *fakeKernel }

func (k manglingKernel) Start(ctx context.Context, name string, args []string, stdin []byte) (func() ([]byte, error), error) {
	out, err := k.fakeKernel.run(ctx, name, args, stdin)
	return func() ([]byte, error) { return []byte(strings.ReplaceAll(string(out), "-m owner ", "")), err }, nil
}

func TestInstallFailsWhenTheKernelDisagrees(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	in.Runner = manglingKernel{k}
	cfg := api.DefaultTransparentProxyConfig()
	cfg.Retry.MaxRetries = 0
	_, err := in.Install(context.Background(), cfg, testHost)
	if err == nil || !strings.Contains(err.Error(), "ipv4: the rules read back after applying differ from those applied") {
		t.Fatalf("error = %v", err)
	}
	for family, tables := range k.families {
		if st, _ := ParseState(tables.save()); !st.Empty() {
			t.Errorf("%s: rules left behind after a failed verification: %+v", family, st)
		}
	}
}

func TestInstallRefusesInvalidConfigBeforeTouchingAnything(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	cfg := api.DefaultTransparentProxyConfig()
	cfg.Redirect.Inbound.Port = cfg.Redirect.Outbound.Port
	if _, err := in.Install(context.Background(), cfg, testHost); err == nil {
		t.Fatal("Install accepted colliding redirect ports")
	}
	if len(k.calls) != 0 {
		t.Errorf("commands ran for an invalid config: %q", k.calls)
	}
}

func TestUninstallRemovesOnlyOurs(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	foreign := "*nat\n:FOREIGN - [0:0]\n-A OUTPUT -p tcp -j FOREIGN\nCOMMIT\n"
	for _, f := range []string{"iptables", "ip6tables"} {
		k.families[f], _ = k.families[f].restore(foreign)
	}
	before := string(k.families["iptables"].save())
	if _, err := in.Install(context.Background(), everything(), testHost); err != nil {
		t.Fatal(err)
	}
	res, err := in.Uninstall(context.Background(), api.DefaultTransparentProxyConfig())
	if err != nil {
		t.Fatal(err)
	}
	if !res.PassthroughAddress {
		t.Error("the ::6 address was not removed")
	}
	after := string(k.families["iptables"].save())
	// The fake keeps the tables install created, as the kernel does; only rules and chains count.
	if st, _ := ParseState([]byte(after)); !st.Empty() || st.Foreign != 1 || !strings.Contains(after, ":FOREIGN") {
		t.Errorf("after uninstall:\n%s\nbefore install:\n%s", after, before)
	}
}

// TestFreshNamespaceRunsNoSave: where the kernel says none of our tables exist, the rules are not
// read with iptables-save but counted afterwards, so the install runs the two restores only.
func TestFreshNamespaceRunsNoSave(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	in.sys = &fakeSystem{kernel: k}
	if _, err := in.Install(context.Background(), everything(), testHost); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"iptables":  {"iptables-nft-restore --noflush --wait 5"},
		"ip6tables": {"ip6tables-nft-restore --noflush --wait 5"},
	}
	if got := byFamily(k.calls); !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %q, want only the restores %q", k.calls, want)
	}
	// Once the tables exist, a re-run reads them.
	k.calls = nil
	if _, err := in.Install(context.Background(), everything(), testHost); err != nil {
		t.Fatal(err)
	}
	if want := []string{"iptables-nft-save", "ip6tables-nft-save"}; !reflect.DeepEqual(k.calls, want) {
		t.Errorf("re-run calls = %q, want %q", k.calls, want)
	}
}

func TestFreshNamespaceVerifiesByCounting(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	in.sys = &fakeSystem{kernel: k}
	in.Runner = droppingKernel{k}
	cfg := everything()
	cfg.Retry.MaxRetries = 0
	_, err := in.Install(context.Background(), cfg, testHost)
	if err == nil || !strings.Contains(err.Error(), "ipv4: the kernel holds") {
		t.Fatalf("error = %v, want a count mismatch", err)
	}
}

// droppingKernel loses the rule redirecting outbound TCP to the sidecar, as a kernel that ignored
// one would.
type droppingKernel struct{ *fakeKernel }

func (k droppingKernel) Start(ctx context.Context, name string, args []string, stdin []byte) (func() ([]byte, error), error) {
	var kept []string
	for _, line := range strings.Split(string(stdin), "\n") {
		if !strings.HasPrefix(line, "-A "+ChainOutboundRedirect) {
			kept = append(kept, line)
		}
	}
	return k.fakeKernel.Start(ctx, name, args, []byte(strings.Join(kept, "\n")))
}

// TestWaitArguments: wait and waitInterval go to every restore; iptables-nft accepts and ignores
// them, legacy iptables waits for its lock.
func TestWaitArguments(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	cfg := api.DefaultTransparentProxyConfig()
	cfg.Wait, cfg.WaitInterval = 7, 250
	if _, err := in.Install(context.Background(), cfg, testHost); err != nil {
		t.Fatal(err)
	}
	if got := byFamily(k.calls)["iptables"][1]; got != "iptables-nft-restore --noflush --wait 7 --wait-interval 250" {
		t.Errorf("restore ran as %q", got)
	}
	k.calls = nil
	cfg.Wait = 0
	if _, err := in.Uninstall(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := byFamily(k.calls)["iptables"][1]; got != "iptables-nft-restore --noflush" {
		t.Errorf("with wait 0, restore ran as %q", got)
	}
}

// TestGivenExecutables: iptablesExecutables are run instead of the backend's tools, per family, and
// no backend is detected when both families' are given.
func TestGivenExecutables(t *testing.T) {
	k := newFakeKernel()
	in, _ := fakeInstaller(k)
	in.Backend = nil // detection would look for tools on PATH, and fail the test if it ran
	in.sys = &fakeSystem{kernel: k}
	cfg := api.DefaultTransparentProxyConfig()
	cfg.IPTablesExecutables = mustParse(api.ParseExecutables("iptables:/x/iptables,iptables-save:/x/iptables-save,iptables-restore:/x/iptables-restore," +
		"ip6tables:/y/ip6tables,ip6tables-save:/y/ip6tables-save,ip6tables-restore:/y/ip6tables-restore"))
	res, err := in.Install(context.Background(), cfg, testHost)
	if err != nil {
		t.Fatal(err)
	}
	// Of no known backend, the rules are not probed over netlink: read before, and after.
	want := map[string][]string{
		"/x/iptables":  {"/x/iptables-save", "/x/iptables-restore --noflush --wait 5", "/x/iptables-save"},
		"/y/ip6tables": {"/y/ip6tables-save", "/y/ip6tables-restore --noflush --wait 5", "/y/ip6tables-save"},
	}
	if got := byFamily(k.calls); !reflect.DeepEqual(got, want) {
		t.Errorf("calls = %q, want %q", got, want)
	}
	if in.Backend != nil || res.Backend.String() != "the given iptablesExecutables" {
		t.Errorf("detected %v, reported %q", in.Backend, res.Backend)
	}
	k.calls = nil
	if _, err := in.Uninstall(context.Background(), cfg); err != nil || len(k.calls) != 6 || !strings.HasPrefix(k.calls[0], "/") {
		t.Errorf("uninstall ran %q: %v", k.calls, err)
	}
}

// byFamily splits the calls by family, keeping each family's order.
func byFamily(calls []string) map[string][]string {
	out := map[string][]string{}
	for _, c := range calls {
		family, _, _ := strings.Cut(c, "-")
		out[family] = append(out[family], c)
	}
	return out
}

// nftInstaller installs with the nftables backend the configuration names, into fakes.
func nftInstaller() (*Installer, *fakeSystem, *fakeKernel) {
	k := newFakeKernel()
	sys := &fakeSystem{nft: newFakeNFT()}
	return &Installer{Runner: k, sys: sys, sleep: func(time.Duration) {}}, sys, k
}

func nftConfig(c *api.TransparentProxyConfig) *api.TransparentProxyConfig {
	c.SetBackend(api.BackendNFTables)
	return c
}

// TestNFTablesInstallIsOneTransaction: both families in one transaction, nothing on a re-run, one
// transaction replacing both on a change, one removing both on uninstall; no iptables program runs.
func TestNFTablesInstallIsOneTransaction(t *testing.T) {
	in, sys, k := nftInstaller()
	ctx := context.Background()
	commits := func() [][]nftFamilyChange { return sys.nft.commits }
	res, err := in.Install(ctx, nftConfig(everything()), testHost)
	if err != nil {
		t.Fatal(err)
	}
	if c := commits(); len(c) != 1 || len(c[0]) != 2 || c[0][0].add == nil || c[0][1].add == nil || !res.PassthroughAddress {
		t.Fatalf("install: %d transactions %+v, result %+v", len(c), c, res)
	}
	if _, err := in.Install(ctx, nftConfig(everything()), testHost); err != nil || len(commits()) != 1 {
		t.Errorf("a re-run made a transaction (%v)", err)
	}
	gateway := nftConfig(api.DefaultTransparentProxyConfig())
	gateway.Redirect.Inbound.Enabled = false
	if _, err := in.Install(ctx, gateway, testHost); err != nil {
		t.Fatal(err)
	}
	if c := commits(); len(c) != 2 || !c[1][0].delete || c[1][0].add == nil || !c[1][1].delete || c[1][1].add == nil {
		t.Errorf("a change is not one transaction replacing both tables: %+v", c[len(c)-1])
	}
	res, err = in.Uninstall(ctx, gateway)
	if err != nil {
		t.Fatal(err)
	}
	if c := commits(); len(c) != 3 || len(sys.nft.tables) != 0 || !res.PassthroughAddress {
		t.Errorf("uninstall: tables left %v, result %+v", sys.nft.tables, res)
	}
	for _, call := range k.calls {
		if !strings.HasSuffix(call, "-save") {
			t.Errorf("an iptables program changed something: %s", call)
		}
	}
}

// TestNFTablesFailedTransactionChangesNothing: a refused transaction leaves the tables as they
// were, and takes back the ::6 address it added.
func TestNFTablesFailedTransactionChangesNothing(t *testing.T) {
	in, sys, _ := nftInstaller()
	ctx := context.Background()
	sys.nft.fail = func([]nftFamilyChange) error { return errors.New("operation not supported") }
	if _, err := in.Install(ctx, nftConfig(everything()), testHost); err == nil {
		t.Fatal("Install succeeded with the transaction refused")
	}
	if len(sys.nft.tables) != 0 || sys.passthrough {
		t.Errorf("a refused install left tables %v, ::6 %v", sys.nft.tables, sys.passthrough)
	}
	sys.nft.fail = nil
	if _, err := in.Install(ctx, nftConfig(api.DefaultTransparentProxyConfig()), testHost); err != nil {
		t.Fatal(err)
	}
	before := maps.Clone(sys.nft.tables)
	sys.nft.fail = func([]nftFamilyChange) error { return errors.New("operation not supported") }
	if _, err := in.Install(ctx, nftConfig(everything()), testHost); err == nil {
		t.Fatal("Install succeeded with the transaction refused")
	}
	if !maps.Equal(sys.nft.tables, before) || !sys.passthrough {
		t.Errorf("a refused change did not leave the previous install as it was")
	}
}

// TestNFTablesVerifiesWhatTheKernelHolds: a table that holds fewer rules than the transaction
// added fails the install and is taken back, whether it was made fresh (rules counted per chain)
// or replaced one of ours (read back whole).
func TestNFTablesVerifiesWhatTheKernelHolds(t *testing.T) {
	in, sys, _ := nftInstaller()
	ctx := context.Background()
	sys.nft.drop = 1
	if _, err := in.Install(ctx, nftConfig(everything()), testHost); err == nil || !strings.Contains(err.Error(), "rules per chain") {
		t.Fatalf("Install with a rule lost: %v", err)
	}
	if len(sys.nft.tables) != 0 || sys.passthrough {
		t.Errorf("a failed verification left tables %v, ::6 %v", sys.nft.tables, sys.passthrough)
	}
	if _, err := in.Install(ctx, nftConfig(api.DefaultTransparentProxyConfig()), testHost); err != nil {
		t.Fatal(err)
	}
	before := maps.Clone(sys.nft.tables)
	sys.nft.drop = 1
	if _, err := in.Install(ctx, nftConfig(everything()), testHost); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("a change with a rule lost: %v", err)
	}
	if !maps.EqualFunc(sys.nft.tables, before, func(a, b *NFTRuleset) bool { return reflect.DeepEqual(a, b) }) || !sys.passthrough {
		t.Errorf("a failed verification did not put the previous tables back: %v", sys.nft.tables)
	}
}

// TestNFTablesToIPTablesRemovesOursAfterTheRestores: the iptables rules are in place before our
// nftables tables go, so that traffic is never without rules.
func TestNFTablesToIPTablesRemovesOursAfterTheRestores(t *testing.T) {
	in, sys, k := nftInstaller()
	sys.nft.log = &k.calls
	ctx := context.Background()
	if _, err := in.Install(ctx, nftConfig(everything()), testHost); err != nil {
		t.Fatal(err)
	}
	k.calls = nil
	in.detected = &Backend{Name: "nft"}
	cfg := everything()
	cfg.SetBackend(api.BackendIPTables)
	if _, err := in.Install(ctx, cfg, testHost); err != nil {
		t.Fatal(err)
	}
	last := len(k.calls) - 1
	if last < 0 || k.calls[last] != "nftables transaction" || len(sys.nft.tables) != 0 ||
		!slices.ContainsFunc(k.calls[:last], func(c string) bool { return strings.HasPrefix(c, "ip6tables-nft-restore") }) {
		t.Errorf("calls %q; tables left %v", k.calls, sys.nft.tables)
	}
}

package initcontainer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mdnetlink "github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/xtableslock"
)

var counters = regexp.MustCompile(`\[\d+:\d+\]|packets \d+ bytes \d+`)

// saveAll is everything of anyone's in ns: both families' iptables-save of both variants, and nft's
// listing of every table, iptables-nft's included; without the comments and counters that change
// between runs.
func saveAll(t *testing.T, ns *netkit.Namespace) string {
	t.Helper()
	nft, legacy := saveSides(t, ns)
	return nft + legacy
}

// saveSides is saveAll in two: what nf_tables holds, iptables-nft's tables included, and what
// legacy iptables holds.
func saveSides(t *testing.T, ns *netkit.Namespace) (nft, legacy string) {
	t.Helper()
	nft = ns.Rules(t, "nft") + ns.Run(t, "nft", "list", "ruleset")
	return counters.ReplaceAllString(nft, "0"), counters.ReplaceAllString(ns.Rules(t, "legacy"), "0")
}

func uninstall(t *testing.T, ns *netkit.Namespace, b Backend) (*Result, error) {
	t.Helper()
	var res *Result
	err := ns.Do(func() (err error) {
		res, err = (&Installer{Backend: &b}).Uninstall(context.Background(), api.DefaultTransparentProxyConfig())
		return err
	})
	return res, err
}

// foreignRules are someone else's, in every iptables table we use, in both families.
const foreignRules = `*mangle
-A PREROUTING -p tcp --dport 9 -j ACCEPT
COMMIT
*raw
-A OUTPUT -p udp --dport 9 -j NOTRACK
COMMIT
*nat
:FOREIGN - [0:0]
-A OUTPUT -p tcp --dport 9 -j FOREIGN
-A FOREIGN -j RETURN
COMMIT
`

// firewalldTable is a table as firewalld's nftables backend makes one, with its chains at the
// priorities firewalld gives them, which install and uninstall must leave as it is.
const firewalldTable = `table inet firewalld {
	chain nat_PREROUTING {
		type nat hook prerouting priority dstnat + 10; policy accept;
		tcp dport 9 return
	}
	chain nat_OUTPUT {
		type nat hook output priority -90; policy accept;
		tcp dport 9 return
	}
	chain mangle_PREROUTING {
		type filter hook prerouting priority mangle + 10; policy accept;
	}
	chain raw_PREROUTING {
		type filter hook prerouting priority raw + 10; policy accept;
	}
	chain filter_INPUT {
		type filter hook input priority filter + 10; policy accept;
		ct state established,related accept
	}
}
`

// foreignPod is a fresh pod's network namespace holding foreignRules, in both families, with b's
// iptables (iptables-nft's for nftables, as Docker's on a host), and firewalld's table.
func foreignPod(t *testing.T, b Backend) *netkit.Namespace {
	t.Helper()
	pod := netkit.New(t).Pod
	tools := b
	if b.Native() {
		tools = Backend{Name: "nft"}
	}
	for _, f := range []Family{IPv4, IPv6} {
		pod.RunInput(t, foreignRules, tools.Tool(f, "restore"), "--noflush")
	}
	pod.RunInput(t, firewalldTable, "nft", "-f", "-")
	return pod
}

func everything() *api.TransparentProxyConfig { return scenarioConfig("everything") }

func scenarioConfig(name string) *api.TransparentProxyConfig {
	for _, s := range scenarios {
		if s.name == name {
			return s.config()
		}
	}
	panic("no scenario " + name)
}

// lifecycles are the configurations whose install, re-run and uninstall are tried against others'
// rules: with comments, and without, where only the chains and the jumps tell ours.
var lifecycles = []string{"everything", "comments-disabled"}

func TestRerunChangesNothing(t *testing.T) {
	requireTools(t)
	for _, b := range everyBackend {
		for _, name := range lifecycles {
			t.Run(b.Name+"/"+name, func(t *testing.T) { rerunChangesNothing(t, b, scenarioConfig(name)) })
		}
	}
}

func rerunChangesNothing(t *testing.T, b Backend, cfg *api.TransparentProxyConfig) {
	pod := foreignPod(t, b)
	install(t, pod, b, cfg, testHost)
	first := saveAll(t, pod)
	res := install(t, pod, b, cfg, testHost)
	for _, f := range res.Families {
		if f.Changed {
			t.Errorf("%s: the re-run applied a script:\n%s", f.Family, f.Script())
		}
	}
	if res.PassthroughAddress {
		t.Error("the re-run added ::6 to lo again")
	}
	if second := saveAll(t, pod); second != first {
		t.Errorf("the rules changed on re-run:\n--- first\n%s\n--- second\n%s", first, second)
	}
}

func TestConfigChangeReplacesOurs(t *testing.T) {
	requireTools(t)
	for _, b := range trafficBackends {
		t.Run(b.String(), func(t *testing.T) { configChangeReplacesOurs(t, b) })
	}
}

func configChangeReplacesOurs(t *testing.T, b Backend) {
	pod := foreignPod(t, b)
	install(t, pod, b, everything(), testHost)
	gateway := api.DefaultTransparentProxyConfig()
	gateway.Redirect.Inbound.Enabled = false
	res := install(t, pod, b, gateway, testHost)
	for _, f := range res.Families {
		// One script per family, one transaction for nftables: the old chains and jumps go in it.
		removes := bytesContain(f.Script(), "-X "+ChainInbound+"\n") && bytesContain(f.Script(), "-D PREROUTING ")
		if b.Native() {
			removes = bytesContain(f.Script(), "delete table "+nftFamily(f.Family)+" meshinit\n") && !bytesContain(f.Script(), ChainInbound)
		}
		if !removes {
			t.Errorf("%s: the change did not remove the inbound chain and jump in its one step:\n%s", f.Family, f.Script())
		}
	}
	save := saveAll(t, pod)
	for _, gone := range []string{ChainInbound, "CT --zone", "ct zone", "LOG", "log prefix", "INVALID", "invalid"} {
		if strings.Contains(save, gone) {
			t.Errorf("%q is still installed after the change to a gateway config:\n%s", gone, save)
		}
	}
	if strings.Count(save, "-j FOREIGN") != 2 || !strings.Contains(save, firewalldTable[:40]) {
		t.Errorf("the foreign rules were touched:\n%s", save)
	}
}

func bytesContain(b []byte, s string) bool { return strings.Contains(string(b), s) }

// TestUninstallRestoresExactly: uninstall leaves the namespace as it was before install, to the
// last table and chain: with others' rules, and in a fresh pod, where nothing at all is left.
func TestUninstallRestoresExactly(t *testing.T) {
	requireTools(t)
	for _, b := range everyBackend {
		for _, name := range lifecycles {
			for _, foreign := range []bool{true, false} {
				if b.Name == "legacy" && !foreign {
					continue // legacy tables, once there, stay: no program can remove them
				}
				t.Run(fmt.Sprintf("%s/%s/foreign=%v", b, name, foreign), func(t *testing.T) {
					pod := netkit.New(t).Pod
					if foreign {
						pod = foreignPod(t, b)
					}
					uninstallRestoresExactly(t, pod, b, scenarioConfig(name))
				})
			}
		}
	}
}

func uninstallRestoresExactly(t *testing.T, pod *netkit.Namespace, b Backend, cfg *api.TransparentProxyConfig) {
	before := saveAll(t, pod)
	install(t, pod, b, cfg, testHost)
	res, err := uninstall(t, pod, b)
	if err != nil {
		t.Fatal(err)
	}
	if after := saveAll(t, pod); after != before {
		t.Errorf("the rules after uninstall differ:\n--- before\n%s\n--- after\n%s", before, after)
	}
	removed := 0
	for _, f := range res.Families {
		removed += f.Before.Count().Rules
	}
	if removed == 0 {
		t.Error("uninstall reports nothing removed")
	}
	if !res.PassthroughAddress {
		t.Error("uninstall did not remove the ::6 address install added")
	}
	again, err := uninstall(t, pod, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range again.Families {
		if f.Changed {
			t.Errorf("a second uninstall did something in %s with %s:\n%s", f.Family, f.Backend, f.Script())
		}
	}
}

// failingIPv6 makes the ip6tables restore fail, as a kernel without IPv6 NAT would.
type failingIPv6 struct{ ExecRunner }

func (r failingIPv6) Start(ctx context.Context, name string, args []string, stdin []byte) (func() ([]byte, error), error) {
	if strings.HasPrefix(name, "ip6tables") && strings.HasSuffix(name, "restore") {
		return func() ([]byte, error) {
			return nil, &CommandError{Command: name, ExitCode: 1, Stderr: "ip6tables-restore: line 3 failed"}
		}, nil
	}
	return r.ExecRunner.Start(ctx, name, args, stdin)
}

func TestIPv6FailureLeavesNothing(t *testing.T) {
	requireTools(t)
	b := Backend{Name: "nft"}
	pod := foreignPod(t, b)
	before := saveAll(t, pod)
	err := pod.Do(func() error {
		_, err := (&Installer{Backend: &b, Runner: failingIPv6{}}).Install(context.Background(), everything(), testHost)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "ipv6: ip6tables-nft-restore exited with status 1: ip6tables-restore: line 3 failed") {
		t.Fatalf("Install error = %v, want the ip6tables failure", err)
	}
	if after := saveAll(t, pod); after != before {
		t.Errorf("a failed install left rules behind:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if out := pod.Run(t, "ip", "-6", "addr", "show", "dev", "lo"); strings.Contains(out, "::6/128") {
		t.Errorf("a failed install left ::6 on lo:\n%s", out)
	}
}

// TestNFTablesIPv6FailureLeavesNothing makes the kernel refuse the IPv6 half of the transaction:
// an ip6 table of our name that another socket owns (NFT_TABLE_F_OWNER) cannot be replaced. The
// IPv4 half, in the same transaction, is not applied either.
func TestNFTablesIPv6FailureLeavesNothing(t *testing.T) {
	requireTools(t)
	pod := foreignPod(t, NFTablesBackend)
	owner := ownTable(t, pod, IPv6)
	before := saveAll(t, pod)
	err := pod.Do(func() error {
		_, err := (&Installer{Backend: &NFTablesBackend}).Install(context.Background(), everything(), testHost)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "nftables transaction, nothing changed") {
		t.Fatalf("Install error = %v, want the transaction refused", err)
	}
	if !strings.Contains(err.Error(), "adding a table: ") {
		t.Errorf("Install error = %v, want the refused message named", err)
	}
	if after := saveAll(t, pod); after != before {
		t.Errorf("a failed install left rules behind:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if out := pod.Run(t, "ip", "-6", "addr", "show", "dev", "lo"); strings.Contains(out, "::6/128") {
		t.Errorf("a failed install left ::6 on lo:\n%s", out)
	}
	owner.Close()
}

// ownTable makes, in ns, a table of our name in f owned by a netlink socket of the test's
// (NFT_TABLE_F_OWNER, Linux 5.12): no other socket may change it while that one is open.
// google/nftables cannot set a table's flags, so the batch is written here.
func ownTable(t *testing.T, ns *netkit.Namespace, f Family) *mdnetlink.Conn {
	t.Helper()
	const tableOwner = 0x2
	nfgen := func(family byte, resID uint16) []byte {
		return []byte{family, unix.NFNETLINK_V0, byte(resID >> 8), byte(resID)}
	}
	attrs, err := mdnetlink.MarshalAttributes([]mdnetlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: []byte(nftTable + "\x00")},
		{Type: unix.NFTA_TABLE_FLAGS, Data: binary.BigEndian.AppendUint32(nil, tableOwner)},
	})
	if err != nil {
		t.Fatal(err)
	}
	var c *mdnetlink.Conn
	if err := ns.Do(func() (err error) {
		if c, err = mdnetlink.Dial(unix.NETLINK_NETFILTER, nil); err != nil {
			return err
		}
		batch := []mdnetlink.Message{
			{Header: mdnetlink.Header{Type: unix.NFNL_MSG_BATCH_BEGIN, Flags: mdnetlink.Request}, Data: nfgen(0, unix.NFNL_SUBSYS_NFTABLES)},
			{Header: mdnetlink.Header{Type: unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWTABLE, Flags: mdnetlink.Request | mdnetlink.Acknowledge | mdnetlink.Create},
				Data: append(nfgen(nftProto(f), 0), attrs...)},
			{Header: mdnetlink.Header{Type: unix.NFNL_MSG_BATCH_END, Flags: mdnetlink.Request}, Data: nfgen(0, unix.NFNL_SUBSYS_NFTABLES)},
		}
		if _, err := c.SendMessages(batch); err != nil {
			return err
		}
		_, err = c.Receive()
		return err
	}); err != nil {
		t.Fatalf("owning a table: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConcurrentInstallsSerialise(t *testing.T) {
	requireTools(t)
	for _, b := range trafficBackends {
		t.Run(b.String(), func(t *testing.T) { concurrentInstallsSerialise(t, b) })
	}
}

func concurrentInstallsSerialise(t *testing.T, b Backend) {
	net := netkit.New(t)
	configs := []*api.TransparentProxyConfig{everything(), everything(), api.DefaultTransparentProxyConfig(), everything()}
	var wg sync.WaitGroup
	errs := make([]error, len(configs))
	for i, cfg := range configs {
		wg.Go(func() {
			errs[i] = net.Pod.Do(func() error {
				_, err := (&Installer{Backend: &b}).Install(context.Background(), cfg, testHost)
				return err
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent installs: %v", err)
	}
	// Whichever ran last, the kernel holds exactly one config's rules: a re-run of it is a no-op.
	save := saveAll(t, net.Pod)
	jumps := strings.Count(save, "-j "+ChainOutbound+"\n") + strings.Count(save, "jump "+ChainOutbound+" ")
	if jumps != 2*2 && jumps != 2*1 {
		t.Errorf("found %d jumps to %s, want one set per family:\n%s", jumps, ChainOutbound, save)
	}
}

// TestWaitsForTheXtablesLock holds legacy iptables' lock while installing with the legacy backend.
func TestWaitsForTheXtablesLock(t *testing.T) {
	requireTools(t)
	net := netkit.New(t)
	b := Backend{Name: "legacy"}
	lock := xtableslock.Open(t)

	t.Run("waits, then succeeds", func(t *testing.T) {
		lock.Hold(t)
		var released atomic.Bool
		done := make(chan error, 1)
		go func() {
			cfg := api.DefaultTransparentProxyConfig()
			cfg.Wait = 10
			err := net.Pod.Do(func() error {
				_, err := (&Installer{Backend: &b}).Install(context.Background(), cfg, testHost)
				return err
			})
			if !released.Load() {
				err = fmt.Errorf("the install ended with the lock held, without waiting for it (%v)", err)
			}
			done <- err
		}()
		// Its iptables, a child of this process, blocked on the lock: the install waits for it.
		poll.Until(t, "the install waits for the xtables lock", func() (bool, error) {
			select {
			case err := <-done:
				return false, err
			default:
				return lock.WaitedForBy(os.Getpid())
			}
		})
		released.Store(true)
		lock.Release(t)
		if err := <-done; err != nil {
			t.Fatalf("install once the lock was released: %v", err)
		}
	})
	t.Run("fails clearly at the bound", func(t *testing.T) {
		lock.Hold(t)
		defer lock.Release(t)
		cfg := everything()
		cfg.Wait, cfg.Retry.MaxRetries = 1, 1
		err := net.Pod.Do(func() error {
			in := &Installer{Backend: &b, sleep: func(time.Duration) {}}
			_, err := in.Install(context.Background(), cfg, testHost)
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "xtables lock") {
			t.Errorf("Install with the lock held = %v, want an error about the xtables lock", err)
		}
	})
}

func TestDetectBackend(t *testing.T) {
	requireTools(t)
	net := netkit.New(t)
	detect := func() Backend {
		var b Backend
		if err := net.Pod.Do(func() (err error) {
			b, err = DetectBackend(context.Background(), ExecRunner{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := detect(); b.Name != "nft" {
		t.Errorf("fresh namespace: detected %s, want nft", b)
	}
	if tables := net.Pod.Run(t, "cat", "/proc/net/ip_tables_names"); tables != "" {
		t.Errorf("detection created legacy tables: %q", tables)
	}
	if out := net.Pod.Run(t, "iptables-nft-save"); strings.Contains(out, "*") {
		t.Errorf("detection created nft tables:\n%s", out)
	}
	net.Pod.Run(t, "iptables-legacy", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "9", "-j", "RETURN")
	if b := detect(); b.Name != "legacy" {
		t.Errorf("with a legacy rule: detected %s, want legacy", b)
	}
	net.Pod.Run(t, "iptables-nft", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "9", "-j", "RETURN")
	if b := detect(); b.Name != "nft" {
		t.Errorf("with one rule in each: detected %s, want nft on a tie", b)
	}
}

// TestInstallsRaceForTheXtablesLock runs legacy installs in several namespaces at once: legacy
// iptables takes one host-wide lock, so they contend for it, and every one must still succeed,
// exactly once.
func TestInstallsRaceForTheXtablesLock(t *testing.T) {
	requireTools(t)
	b := Backend{Name: "legacy"}
	namespaces := make([]*netkit.Namespace, 4)
	for i := range namespaces {
		namespaces[i] = netkit.NewBare(t)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(namespaces))
	for i, ns := range namespaces {
		wg.Go(func() {
			errs[i] = ns.Do(func() error {
				_, err := (&Installer{Backend: &b}).Install(context.Background(), everything(), testHost)
				return err
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("racing installs: %v", err)
	}
	for _, ns := range namespaces {
		if n := strings.Count(saveAll(t, ns), "-j "+ChainOutbound+"\n"); n != 4 {
			t.Errorf("%s: %d jumps to %s, want 2 per family", ns.Name, n, ChainOutbound)
		}
	}
}

// TestSwitchBackends moves a pod from one backend to the other: afterwards only the new backend
// holds rules of ours, they capture traffic, others' rules are as they were, and uninstall leaves
// the namespace as it was before the first install. From iptables-nft, the new table and the
// removal of the old rules are one transaction.
func TestSwitchBackends(t *testing.T) {
	requireTools(t)
	for _, move := range [][2]Backend{
		{{Name: "nft"}, NFTablesBackend}, {{Name: "legacy"}, NFTablesBackend},
		{NFTablesBackend, {Name: "nft"}}, {NFTablesBackend, {Name: "legacy"}},
	} {
		from, to := move[0], move[1]
		for _, foreign := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s to %s/foreign=%v", from, to, foreign), func(t *testing.T) {
				net := netkit.New(t)
				pod := net.Pod
				if foreign {
					for _, f := range []Family{IPv4, IPv6} {
						pod.RunInput(t, foreignRules, Backend{Name: "nft"}.Tool(f, "restore"), "--noflush")
					}
					pod.RunInput(t, firewalldTable, "nft", "-f", "-")
				}
				before, legacyBefore := saveSides(t, pod)
				install(t, pod, from, everything(), testHost)
				res := install(t, pod, to, everything(), testHost)
				save := saveAll(t, pod)
				iptables := pod.Rules(t, "nft") + pod.Rules(t, "legacy")
				nft := pod.Run(t, "nft", "list", "tables")
				if to.Native() && (strings.Contains(iptables, "KUMA_MESH") || !strings.Contains(nft, "table ip meshinit")) ||
					!to.Native() && (strings.Contains(nft, "meshinit") || !strings.Contains(pod.Rules(t, to.Name), "KUMA_MESH_OUTBOUND")) {
					t.Fatalf("after the move the rules of ours are not all %s's:\n%s", to, save)
				}
				if from.Name == "nft" {
					for _, f := range res.Families {
						if !bytesContain(f.Script(), "table "+nftFamily(f.Family)+" meshinit {") || !bytesContain(f.Script(), "delete ") {
							t.Errorf("%s: the new table and the old rules' removal are not one transaction:\n%s", f.Family, f.Script())
						}
					}
				}
				if _, err := validateIn(t, pod, everything(), testHost); err != nil {
					t.Errorf("after the move: %v", err)
				}
				if _, err := uninstall(t, pod, to); err != nil {
					t.Fatal(err)
				}
				after, legacy := saveSides(t, pod)
				// Legacy tables, once there, stay; what is in them must not.
				if strings.Contains(legacy, "KUMA_MESH") || legacyBefore != legacy && !slices.Contains([]string{from.Name, to.Name}, "legacy") {
					t.Errorf("legacy iptables after uninstall:\n--- before\n%s\n--- after\n%s", legacyBefore, legacy)
				}
				if after != before {
					t.Errorf("after uninstall:\n--- before\n%s\n--- after\n%s", before, after)
				}
			})
		}
	}
}

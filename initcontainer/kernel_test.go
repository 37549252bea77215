package initcontainer

import (
	"golang.org/x/sys/unix"

	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/prereq"
)

// backends are iptables' variants; everyBackend adds nftables; the traffic tests run against
// iptables-nft and nftables, the two a pod gets.
var (
	backends        = []Backend{{Name: "nft"}, {Name: "legacy"}}
	everyBackend    = append(slices.Clone(backends), NFTablesBackend)
	trafficBackends = []Backend{{Name: "nft"}, NFTablesBackend}
)

// install runs Install inside ns, with the given backend.
func install(t *testing.T, ns *netkit.Namespace, b Backend, cfg *api.TransparentProxyConfig, host Host) *Result {
	t.Helper()
	var res *Result
	err := ns.Do(func() error {
		var err error
		res, err = (&Installer{Backend: &b}).Install(context.Background(), cfg, host)
		return err
	})
	if err != nil {
		t.Fatalf("install in %s with %s: %v", ns.Name, b, err)
	}
	return res
}

func requireTools(t *testing.T) {
	prereq.Root(t)
	// nft reads back what the nftables backend wrote over netlink; the backend itself runs no program.
	for _, tool := range []string{"iptables-nft-restore", "iptables-legacy-restore", "ip6tables-nft-save", "ip6tables-legacy-save", "nft"} {
		prereq.Binary(t, tool)
	}
}

// TestScenariosInstallAsWritten installs every golden scenario with both backends; Install reads
// the rules back and fails unless the kernel holds exactly what was written, which is what makes
// re-runs recognise their own rules.
func TestScenariosInstallAsWritten(t *testing.T) {
	requireTools(t)
	for _, b := range everyBackend {
		t.Run(b.Name, func(t *testing.T) {
			net := netkit.New(t)
			for _, s := range scenarios {
				t.Run(s.name, func(t *testing.T) {
					res := install(t, net.Pod, b, s.config(), testHost)
					for _, f := range res.Families {
						if f.Skipped != "" {
							t.Errorf("%s skipped: %s", f.Family, f.Skipped)
						}
					}
				})
			}
		})
	}
}

func validateIn(t *testing.T, ns *netkit.Namespace, cfg *api.TransparentProxyConfig, host Host) ([]Check, error) {
	t.Helper()
	var checks []Check
	var verr error
	if err := ns.Do(func() error {
		checks, verr = Validate(cfg, host, time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return checks, verr
}

// TestNFTablesListsWhatWasWritten installs every scenario with the nftables backend and lists
// each family's table with nft: it is the text --dry-run prints, so the expressions written over
// netlink are the rules the text says, as nft understands them.
func TestNFTablesListsWhatWasWritten(t *testing.T) {
	requireTools(t)
	net := netkit.New(t)
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			cfg := s.config()
			install(t, net.Pod, NFTablesBackend, cfg, testHost)
			for _, f := range Families(cfg) {
				want := NFTables(Build(cfg, testHost, f)).Text()
				if got := net.Pod.Run(t, "nft", "list", "table", nftFamily(f), nftTable); got != want {
					t.Errorf("%s: nft lists\n%s\nwant\n%s", f, got, want)
				}
			}
		})
	}
}

// TestNFTablesDryRunLoads checks the dry run's text with nft itself, which parses it and commits
// nothing.
func TestNFTablesDryRunLoads(t *testing.T) {
	requireTools(t)
	net := netkit.New(t)
	for _, s := range scenarios {
		script := string(NewPlan(s.config(), testHost, api.BackendNFTables).Scripts())
		net.Pod.RunInput(t, script, "nft", "-c", "-f", "-")
	}
}

func TestValidateProvesCapture(t *testing.T) {
	requireTools(t)
	for _, b := range trafficBackends {
		t.Run(b.String(), func(t *testing.T) { validateProvesCapture(t, b) })
	}
}

func validateProvesCapture(t *testing.T, b Backend) {
	net := netkit.New(t)
	cfg := everything()
	install(t, net.Pod, b, cfg, testHost)
	checks, err := validateIn(t, net.Pod, cfg, testHost)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range checks {
		got = append(got, c.String())
	}
	want := []string{
		"ipv4 outbound: 192.0.2.1:9 captured",
		"ipv4 inbound: 10.200.0.1:10000 captured",
		"ipv4 dns: 10.200.0.2:53 captured",
		"ipv6 outbound: [2001:db8::1]:9 captured",
		"ipv6 inbound: [fd00:200::1]:10000 captured",
		"ipv6 dns: [fd00:200::2]:53 captured",
	}
	if !slices.Equal(got, want) {
		t.Errorf("checks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestValidateOtherConfigurations: included ports are probed on one of them; with outbound off, no
// outbound probe is made; as the proxy's own user (root here plays it), whose outbound traffic
// and DNS are never redirected, only the inbound path is proven, as by Kuma's validator.
func TestValidateOtherConfigurations(t *testing.T) {
	requireTools(t)
	asRoot := Host{ProxyUID: 0, Nameservers: testHost.Nameservers}
	for _, tc := range []struct {
		name   string
		modify func(*api.TransparentProxyConfig)
		host   Host
		want   []string
	}{
		{"included ports", func(c *api.TransparentProxyConfig) { c.Redirect.Outbound.IncludePorts = api.Ports{443, 80} }, testHost, []string{
			"ipv4 outbound: 192.0.2.1:443 captured", "ipv4 inbound: 10.200.0.1:10000 captured", "ipv4 dns: 10.200.0.2:53 captured",
			"ipv6 outbound: [2001:db8::1]:443 captured", "ipv6 inbound: [fd00:200::1]:10000 captured", "ipv6 dns: [fd00:200::2]:53 captured",
		}},
		{"outbound off", func(c *api.TransparentProxyConfig) { c.Redirect.Outbound.Enabled = false }, testHost, []string{
			"ipv4 inbound: skipped: only the proxy's connections to the pod's own address can prove it from here, and with outbound redirection off they are not redirected",
			"ipv4 dns: 10.200.0.2:53 captured",
			"ipv6 inbound: skipped: only the proxy's connections to the pod's own address can prove it from here, and with outbound redirection off they are not redirected",
			"ipv6 dns: [fd00:200::2]:53 captured",
		}},
		{"as the proxy", func(*api.TransparentProxyConfig) {}, asRoot, []string{
			"ipv4 outbound: 192.0.2.1:9 left alone, as the proxy's own",
			"ipv4 inbound: 10.200.0.1:10000 captured",
			"ipv4 dns: skipped: runs as UID 0, the proxy's, whose own dns traffic is never redirected",
			"ipv6 outbound: [2001:db8::1]:9 left alone, as the proxy's own",
			"ipv6 inbound: [fd00:200::1]:10000 captured",
			"ipv6 dns: skipped: runs as UID 0, the proxy's, whose own dns traffic is never redirected",
		}},
	} {
		for _, b := range trafficBackends {
			t.Run(tc.name+"/"+b.String(), func(t *testing.T) {
				net := netkit.New(t)
				cfg := api.DefaultTransparentProxyConfig()
				cfg.Redirect.DNS.Enabled = true
				tc.modify(cfg)
				install(t, net.Pod, b, cfg, tc.host)
				checks, err := validateIn(t, net.Pod, cfg, tc.host)
				var got []string
				for _, c := range checks {
					got = append(got, c.String())
				}
				if err != nil || !slices.Equal(got, tc.want) {
					t.Errorf("checks (%v):\n%s\nwant:\n%s", err, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
			})
		}
	}
}

// TestValidateAsTheProxyWithoutPodAddresses: a pod with no address of a family (a dual-stack
// configuration on a single-stack cluster; here, none at all) is proven inbound through the
// passthrough address on lo, from localhost, as Kuma's validator does.
func TestValidateAsTheProxyWithoutPodAddresses(t *testing.T) {
	requireTools(t)
	pod := netkit.NewBare(t)
	asRoot := Host{ProxyUID: 0}
	cfg := api.DefaultTransparentProxyConfig()
	install(t, pod, Backend{Name: "nft"}, cfg, asRoot)
	checks, err := validateIn(t, pod, cfg, asRoot)
	var got []string
	for _, c := range checks {
		got = append(got, c.String())
	}
	want := []string{
		"ipv4 outbound: 192.0.2.1:9 left alone, as the proxy's own",
		"ipv4 inbound: 127.0.0.6:10000 captured",
		"ipv6 outbound: [2001:db8::1]:9 left alone, as the proxy's own",
		"ipv6 inbound: [::6]:10000 captured",
	}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("checks (%v):\n%s\nwant:\n%s", err, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestValidateFailsUnproven: a validation that cannot prove a path fails, saying why: run as a user
// that is neither the proxy nor root, it cannot prove inbound; with the rules of another proxy UID,
// the proxy's own connection comes back to it; with every family's checks skipped, nothing was
// checked.
func TestValidateFailsUnproven(t *testing.T) {
	requireTools(t)
	net := netkit.New(t)
	cfg := api.DefaultTransparentProxyConfig()
	cfg.IPFamilyMode = api.IPFamilyIPv4
	install(t, net.Pod, Backend{Name: "nft"}, cfg, testHost)

	var err error
	if doErr := net.Pod.Do(func() error {
		// An unprivileged user, as the validation container once ran: its fsuid cannot become the
		// proxy's. The raw call changes this thread alone, which Do never hands back (unix.Setresuid
		// would change every thread of the test).
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, 65534, 65534, 65534); e != 0 {
			return e
		}
		_, err = Validate(cfg, testHost, time.Second)
		return nil
	}); doErr != nil {
		t.Fatal(doErr)
	}
	want := "ipv4 inbound: not checked (cannot act as the proxy's UID 5678 without CAP_SETUID), and a validation must check it: run it as the proxy's user, as Kuma's injector does, or as root"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("as an unprivileged user: %v\nwant it to say %s", err, want)
	}

	// The rules exempt UID 5678, and root plays the proxy.
	_, err = validateIn(t, net.Pod, cfg, Host{ProxyUID: 0})
	want = "ipv4 outbound: FAILED: the proxy's own connection to 192.0.2.1:9 came back to port 15001: the rules do not exempt UID 0, and the sidecar would loop"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("with another proxy's rules: %v\nwant it to say %s", err, want)
	}

	// IPv6 only, on a host without IPv6: nothing to check, which is no pass.
	v6 := api.DefaultTransparentProxyConfig()
	v6.SetFamily(api.IPFamilyIPv6)
	err = covered(v6, []Check{{Family: IPv6, Path: "all", Skipped: noIPv6}})
	if err == nil || err.Error() != "nothing was checked (ipv6 all: skipped: this host has no IPv6)" {
		t.Errorf("nothing checked: %v", err)
	}
}

func TestValidateFailsWithoutRules(t *testing.T) {
	requireTools(t)
	for _, b := range trafficBackends {
		t.Run(b.String(), func(t *testing.T) { validateFailsWithoutRules(t, b) })
	}
}

func validateFailsWithoutRules(t *testing.T, b Backend) {
	net := netkit.New(t)
	cfg := everything()
	cfg.IPFamilyMode = api.IPFamilyIPv4
	// Only the IPv6 rules: IPv4 must fail every probe.
	v6 := everything()
	v6.SetFamily(api.IPFamilyIPv6)
	install(t, net.Pod, b, v6, testHost)
	checks, err := validateIn(t, net.Pod, cfg, testHost)
	if err == nil {
		t.Fatalf("validation passed without IPv4 rules: %v", checks)
	}
	for _, c := range checks {
		if c.Err == nil {
			t.Errorf("%s passed without rules", c)
		}
	}
}

// TestGivenExecutablesInKernel gives legacy iptables' programs for IPv4 alone: IPv4's rules go
// there, IPv6's to the backend detected, nftables in a fresh namespace.
func TestGivenExecutablesInKernel(t *testing.T) {
	requireTools(t)
	net := netkit.New(t)
	cfg := api.DefaultTransparentProxyConfig()
	cfg.IPTablesExecutables = api.Executables{}
	for _, tool := range []string{"iptables", "iptables-save", "iptables-restore"} {
		cfg.IPTablesExecutables[tool] = prereq.Binary(t, strings.Replace(tool, "iptables", "iptables-legacy", 1))
	}
	run := func(uninstall bool) {
		t.Helper()
		if err := net.Pod.Do(func() (err error) {
			if uninstall {
				// Detection would now count both backends' rules, a tie here: say which.
				_, err = (&Installer{Backend: &Backend{Name: "nft"}}).Uninstall(context.Background(), cfg)
			} else {
				_, err = (&Installer{}).Install(context.Background(), cfg, testHost)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	run(false)
	for tool, want := range map[string]bool{"iptables-legacy-save": true, "iptables-nft-save": false, "ip6tables-nft-save": true, "ip6tables-legacy-save": false} {
		if got := strings.Contains(net.Pod.Run(t, tool), ChainOutbound); got != want {
			t.Errorf("%s holds our rules: %v, want %v", tool, got, want)
		}
	}
	run(true)
	for _, tool := range []string{"iptables-legacy-save", "ip6tables-nft-save"} {
		if out := net.Pod.Run(t, tool); strings.Contains(out, "KUMA_MESH") {
			t.Errorf("%s after uninstall:\n%s", tool, out)
		}
	}
}

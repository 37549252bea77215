package initcontainer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/prereq"
)

var backends = []Backend{{Name: "nft"}, {Name: "legacy"}}

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
	for _, tool := range []string{"iptables-nft-restore", "iptables-legacy-restore", "ip6tables-nft-save", "ip6tables-legacy-save"} {
		prereq.Binary(t, tool)
	}
}

// TestScenariosInstallAsWritten installs every golden scenario with both backends; Install reads
// the rules back and fails unless the kernel holds exactly what was written, which is what makes
// re-runs recognise their own rules.
func TestScenariosInstallAsWritten(t *testing.T) {
	requireTools(t)
	for _, b := range backends {
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

func validateIn(t *testing.T, ns *netkit.Namespace, cfg *api.TransparentProxyConfig) ([]Check, error) {
	t.Helper()
	var checks []Check
	var verr error
	if err := ns.Do(func() error {
		checks, verr = Validate(cfg, testHost, time.Second)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return checks, verr
}

func TestValidateProvesCapture(t *testing.T) {
	requireTools(t)
	net := netkit.New(t)
	cfg := everything()
	install(t, net.Pod, Backend{Name: "nft"}, cfg, testHost)
	checks, err := validateIn(t, net.Pod, cfg)
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

func TestValidateFailsWithoutRules(t *testing.T) {
	requireTools(t)
	net := netkit.New(t)
	cfg := everything()
	cfg.IPFamilyMode = api.IPFamilyIPv4
	// Only the IPv6 rules: IPv4 must fail every probe.
	v6 := everything()
	v6.SetFamily(api.IPFamilyIPv6)
	install(t, net.Pod, Backend{Name: "nft"}, v6, testHost)
	checks, err := validateIn(t, net.Pod, cfg)
	if err == nil {
		t.Fatalf("validation passed without IPv4 rules: %v", checks)
	}
	for _, c := range checks {
		if c.Err == nil {
			t.Errorf("%s passed without rules", c)
		}
	}
}

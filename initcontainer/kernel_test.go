package initcontainer

import (
	"context"
	"testing"

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

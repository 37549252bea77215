package initcontainer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
)

// TestChooseBackend pins auto's order, each fact against those after it.
func TestChooseBackend(t *testing.T) {
	iptablesNode := BackendFacts{IPTablesTool: true, IPTablesKernel: true, NFTables: true}
	nftOnlyNode := BackendFacts{IPTablesTool: true, NFTables: true}
	for _, tc := range []struct {
		name   string
		modify func(*api.TransparentProxyConfig)
		facts  BackendFacts
		want   api.Backend
	}{
		{"a node that uses iptables", nil, iptablesNode, api.BackendIPTables},
		{"iptables tables in the pod", nil, BackendFacts{IPTablesTool: true, IPTablesHere: true, NFTables: true}, api.BackendIPTables},
		{"nothing of iptables loaded", nil, nftOnlyNode, api.BackendNFTables},
		{"no iptables program, on a node that uses iptables", nil, BackendFacts{IPTablesKernel: true, IPTablesHere: true, NFTables: true}, api.BackendNFTables},
		{"a table of ours, on a node that uses iptables", nil, BackendFacts{OursNFTables: true, IPTablesTool: true, IPTablesKernel: true, IPTablesHere: true, NFTables: true}, api.BackendNFTables},
		{"nf_tables not answering", nil, BackendFacts{IPTablesTool: true}, api.BackendIPTables},
		{"iptables programs given", func(c *api.TransparentProxyConfig) {
			c.IPTablesExecutables = api.Executables{"iptables": "/x", "iptables-save": "/x", "iptables-restore": "/x"}
		}, BackendFacts{OursNFTables: true, NFTables: true}, api.BackendIPTables},
		{"firewalld's rules stored", func(c *api.TransparentProxyConfig) { c.StoreFirewalld = true }, nftOnlyNode, api.BackendIPTables},
		{"iptables named", func(c *api.TransparentProxyConfig) { c.SetBackend(api.BackendIPTables) }, nftOnlyNode, api.BackendIPTables},
		{"nftables named", func(c *api.TransparentProxyConfig) { c.SetBackend(api.BackendNFTables) }, iptablesNode, api.BackendNFTables},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := api.DefaultTransparentProxyConfig()
			if tc.modify != nil {
				tc.modify(cfg)
			}
			if got := ChooseBackend(cfg, tc.facts); got != tc.want {
				t.Errorf("chose %s, want %s (%s)", got, tc.want, tc.facts)
			}
		})
	}
}

// TestBackendFactsInKernel reads the facts in real namespaces: tables of ours and others',
// iptables' programs on PATH, and the kernel's iptables core, which this kernel has.
func TestBackendFactsInKernel(t *testing.T) {
	requireTools(t)
	facts := func(ns *netkit.Namespace) BackendFacts {
		var f BackendFacts
		if err := ns.Do(func() error { f = realSystem{}.backendFacts(); return nil }); err != nil {
			t.Fatal(err)
		}
		return f
	}
	fresh := netkit.New(t).Pod
	if f := facts(fresh); f.OursNFTables || f.IPTablesHere || !f.IPTablesTool || !f.NFTables {
		t.Errorf("fresh namespace: %s", f)
	}
	withNFT := netkit.New(t).Pod
	install(t, withNFT, NFTablesBackend, api.DefaultTransparentProxyConfig(), testHost)
	if f := facts(withNFT); !f.OursNFTables || f.IPTablesHere {
		t.Errorf("after an nftables install: %s", f)
	}
	for _, variant := range []string{"nft", "legacy"} {
		ns := netkit.New(t).Pod
		ns.Run(t, "iptables-"+variant, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "9", "-j", "RETURN")
		if f := facts(ns); !f.IPTablesHere || f.OursNFTables {
			t.Errorf("with a rule of iptables-%s: %s", variant, f)
		}
	}
	// The kernel's iptables core: built in here, or loaded as a module.
	if f := facts(fresh); !f.IPTablesKernel {
		if _, err := os.Stat("/proc/net/ip_tables_names"); err == nil {
			t.Errorf("the kernel has ip_tables, but the facts say not: %s", f)
		}
	}
	t.Setenv("PATH", t.TempDir())
	if f := facts(fresh); f.IPTablesTool {
		t.Errorf("with an empty PATH: %s", f)
	}
}

// TestAutoKeepsTheBackendOfOurs: auto never changes backend on a re-run, whatever the node, and
// without iptables' programs installs with nftables.
func TestAutoKeepsTheBackendOfOurs(t *testing.T) {
	requireTools(t)
	cfg := api.DefaultTransparentProxyConfig()
	ns := netkit.New(t).Pod
	install(t, ns, NFTablesBackend, cfg, testHost)
	var res *Result
	if err := ns.Do(func() (err error) { res, err = (&Installer{}).Install(context.Background(), cfg, testHost); return err }); err != nil {
		t.Fatal(err)
	}
	if !res.Backend.Native() || res.Families[0].Changed || !strings.HasPrefix(res.Chosen, "auto chose nftables: a table of ours") {
		t.Errorf("auto over a table of ours: %s, %q, changed %v", res.Backend, res.Chosen, res.Families[0].Changed)
	}

	bare := netkit.New(t).Pod
	t.Setenv("PATH", filepath.Join(t.TempDir(), "none"))
	if err := bare.Do(func() (err error) { res, err = (&Installer{}).Install(context.Background(), cfg, testHost); return err }); err != nil {
		t.Fatal(err)
	}
	if !res.Backend.Native() || !strings.Contains(res.Chosen, "no iptables-restore on PATH") {
		t.Errorf("auto without iptables: %s, %q", res.Backend, res.Chosen)
	}
}

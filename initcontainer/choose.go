package initcontainer

import (
	"os"
	"slices"
	"strings"

	"github.com/meshinit/meshinit/api"
)

// BackendFacts are what auto chooses the backend by, read from the calling thread's network
// namespace and from the kernel.
type BackendFacts struct {
	// OursNFTables is true when a table of ours (ip or ip6 meshinit) exists.
	OursNFTables bool
	// NFTables is true when nf_tables answers over netlink.
	NFTables bool
	// IPTablesTool is true when an iptables-restore is on PATH: iptables-restore,
	// iptables-nft-restore or iptables-legacy-restore.
	IPTablesTool bool
	// IPTablesHere is true when this namespace has iptables tables, anyone's: legacy ones, listed
	// in /proc/net/ip_tables_names or ip6_tables_names, or iptables-nft's, nftables tables of the
	// ip or ip6 family named filter, nat, mangle, raw or security.
	IPTablesHere bool
	// IPTablesKernel is true when the kernel's iptables core, x_tables, is loaded, which only
	// iptables' users load: as a module (/sys/module/x_tables), or built in with its IPv4 tables
	// (/proc/net/ip_tables_names exists).
	IPTablesKernel bool
}

// ChooseBackend is the backend for a configuration: its meshinit.backend unless that is auto.
// auto keeps iptables where the pod or node already uses it, and takes nftables where iptables is
// missing, in this order:
//
//  1. the configuration asks for iptables' rules (iptablesExecutables, storeFirewalld): iptables;
//  2. a table of ours exists: nftables, so that a re-run never changes backend;
//  3. no iptables-restore on PATH, as in the kuma-init-nft image: nftables;
//  4. iptables tables in this namespace, or iptables' core loaded in the kernel: iptables (rules
//     of ours in iptables are iptables tables too);
//  5. otherwise nftables, if nf_tables answers, else iptables.
func ChooseBackend(cfg *api.TransparentProxyConfig, f BackendFacts) api.Backend {
	if b := cfg.Backend(); b != api.BackendAuto {
		return b
	}
	switch {
	case len(cfg.IPTablesExecutables) > 0 || cfg.StoreFirewalld:
		return api.BackendIPTables
	case f.OursNFTables:
		return api.BackendNFTables
	case !f.IPTablesTool:
		return api.BackendNFTables
	case f.IPTablesHere || f.IPTablesKernel || !f.NFTables:
		return api.BackendIPTables
	}
	return api.BackendNFTables
}

// readBackendFacts reads the facts of the calling thread's namespace; tables are its nftables
// tables, nil when nf_tables does not answer.
func readBackendFacts(tables []nftTableRef, nftErr error) BackendFacts {
	f := BackendFacts{NFTables: nftErr == nil, IPTablesHere: legacyTablesExist()}
	for _, t := range tables {
		switch {
		case t.name == nftTable && (t.family == tableFamily(IPv4) || t.family == tableFamily(IPv6)):
			f.OursNFTables = true
		case slices.Contains(iptablesTableNames, t.name) && (t.family == tableFamily(IPv4) || t.family == tableFamily(IPv6)):
			f.IPTablesHere = true
		}
	}
	f.IPTablesTool = iptablesOnPath()
	f.IPTablesKernel = exists("/sys/module/x_tables") || exists("/proc/thread-self/net/ip_tables_names")
	return f
}

// iptablesOnPath reports whether an iptables-restore, of either variant or the default, is on PATH.
func iptablesOnPath() bool {
	return slices.ContainsFunc([]string{"iptables-restore", "iptables-nft-restore", "iptables-legacy-restore"}, hasTool)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// String lists the facts, for the report of what auto chose.
func (f BackendFacts) String() string {
	var out []string
	for _, fact := range []struct {
		on       bool
		yes, not string
	}{
		{f.OursNFTables, "a table of ours", "no table of ours"},
		{f.IPTablesTool, "iptables-restore on PATH", "no iptables-restore on PATH"},
		{f.IPTablesHere, "iptables tables here", "no iptables tables here"},
		{f.IPTablesKernel, "the kernel's iptables core loaded", "the kernel's iptables core not loaded"},
		{f.NFTables, "nf_tables answering", "nf_tables not answering"},
	} {
		if fact.on {
			out = append(out, fact.yes)
		} else {
			out = append(out, fact.not)
		}
	}
	return strings.Join(out, ", ")
}

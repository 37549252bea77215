package initcontainer

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/meshinit/meshinit/internal/readfile"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Running iptables-save costs a process, about as much as the restore itself
// (BenchmarkKumaInitInstall). In a fresh pod
// namespace, where kuma-init runs, the tables we use do not exist yet and the kernel can tell so
// directly: nf_tables over netlink, legacy x_tables in /proc. The Installer then skips reading
// rules that cannot be there, and verifies by counting each chain's rules over netlink.

// kernelTables reports whether any table we use exists in the family; known is false when the
// backend cannot be asked without a process.
func kernelTables(b Backend, f Family) (exist, known bool, err error) {
	switch b.Name {
	case "nft":
		names, err := nftTableNames(f)
		if err != nil {
			return false, false, err
		}
		return slices.ContainsFunc(tables, func(t string) bool { return slices.Contains(names, t) }), true, nil
	case "legacy":
		file := "ip_tables_names"
		if f == IPv6 {
			file = "ip6_tables_names"
		}
		data, err := readfile.Regular("/proc/thread-self/net/"+file, maxProcTableNames)
		if err != nil {
			return false, false, nil // the module is not loaded: ask iptables-save instead
		}
		names := strings.Fields(string(data))
		return slices.ContainsFunc(tables, func(t string) bool { return slices.Contains(names, t) }), true, nil
	}
	return false, false, nil
}

// kernelRuleCounts returns, per table and chain, how many rules nf_tables holds in the family;
// known is false for other backends.
func kernelRuleCounts(b Backend, f Family) (counts map[string]map[string]int, known bool, err error) {
	if b.Name != "nft" {
		return nil, false, nil
	}
	err = nftDump(f, unix.NFT_MSG_GETRULE, func() { counts = map[string]map[string]int{} }, func(attrs nftAttrs) {
		table, chain := cString(attrs.get(unix.NFTA_RULE_TABLE)), cString(attrs.get(unix.NFTA_RULE_CHAIN))
		if counts[table] == nil {
			counts[table] = map[string]int{}
		}
		counts[table][chain]++
	})
	return counts, err == nil, err
}

func nftTableNames(f Family) ([]string, error) {
	var names []string
	err := nftDump(f, unix.NFT_MSG_GETTABLE, func() { names = nil }, func(attrs nftAttrs) {
		names = append(names, cString(attrs.get(unix.NFTA_TABLE_NAME)))
	})
	return names, err
}

// nftDump runs one nf_tables dump for the family in the calling thread's namespace and hands each
// object's attributes to fn, after reset: a dump interrupted by another change is run again.
func nftDump(f Family, msg int, reset func(), fn func(nftAttrs)) error {
	fd, err := nftSocket()
	if err == nil {
		defer unix.Close(fd)
		req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|msg, unix.NLM_F_DUMP)
		req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(nftProto(f)), Version: nl.NFNETLINK_V0})
		err = nftDumpOn(fd, req, reset, func(_ uint8, attrs nftAttrs) { fn(attrs) })
	}
	if err != nil {
		return fmt.Errorf("%s: reading nf_tables: %w", f, err)
	}
	return nil
}

func cString(b []byte) string { return string(bytes.TrimRight(b, "\x00")) }

// kernelChains lists, by table, the chains nf_tables holds in iptables' tables of ours; known is
// false for other backends, whose tables are not removed.
func kernelChains(b Backend, f Family) (chains map[string][]string, known bool, err error) {
	if b.Name != "nft" {
		return nil, false, nil
	}
	err = nftDump(f, unix.NFT_MSG_GETCHAIN, func() { chains = map[string][]string{} }, func(attrs nftAttrs) {
		if table := cString(attrs.get(unix.NFTA_CHAIN_TABLE)); slices.Contains(tables, table) {
			chains[table] = append(chains[table], cString(attrs.get(unix.NFTA_CHAIN_NAME)))
		}
	})
	return chains, err == nil, err
}

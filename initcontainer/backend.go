package initcontainer

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/internal/readfile"
)

// Backend is where rules go: nftables, natively, or an iptables variant, nf_tables or legacy
// x_tables. Both iptables variants may be present on a host, and rules only work together when
// everyone uses the same one.
type Backend struct {
	// Name is "nftables" for the native backend; otherwise the iptables variant, "nft" or
	// "legacy", or "" when only the unsuffixed tools exist.
	Name string
	// Executables, from the configuration's iptablesExecutables, replace the backend's tools of the
	// families they name.
	Executables api.Executables
}

// Tool is the command of a tool ("save", "restore") for a family in this backend, such as
// ip6tables-nft-restore, or the executable given for it.
func (b Backend) Tool(f Family, tool string) string {
	if path := b.Executables[f.command(tool)]; path != "" {
		return path
	}
	if b.Name == "" {
		return f.command(tool)
	}
	return strings.Replace(f.command(tool), "tables-", "tables-"+b.Name+"-", 1)
}

// given reports whether the family's tools are given executables, of no backend known.
func (b Backend) given(f Family) bool { return b.Executables[f.command("restore")] != "" }

// nameNFTables names the native nftables backend.
const nameNFTables = "nftables"

// NFTablesBackend is the native nftables backend.
var NFTablesBackend = Backend{Name: nameNFTables}

// Native reports whether b is the native nftables backend rather than an iptables variant.
func (b Backend) Native() bool { return b.Name == nameNFTables }

func (b Backend) String() string {
	if b.Native() {
		return "nftables"
	}
	name := "iptables-" + b.Name
	if b.Name == "" {
		name = "the default iptables"
	}
	switch {
	case len(b.Executables) == 0:
		return name
	case !b.given(IPv4) || !b.given(IPv6):
		return name + " and the given iptablesExecutables"
	}
	return "the given iptablesExecutables"
}

// DetectBackend picks the backend whose tables already hold rules, without creating any table.
// Legacy tables are listed by the kernel in /proc; only when some exist are both backends' rules
// counted (iptables-legacy-save reads only listed tables, so it creates none). The one with more
// rules wins and a tie goes to nft, the default of current distributions.
func DetectBackend(ctx context.Context, r Runner) (Backend, error) {
	nft, legacy := hasTool("iptables-nft-restore"), hasTool("iptables-legacy-restore")
	switch {
	case nft && !legacy:
		return Backend{Name: "nft"}, nil
	case legacy && !nft:
		return Backend{Name: "legacy"}, nil
	case !nft && !legacy:
		if hasTool("iptables-restore") {
			return Backend{}, nil
		}
		return Backend{}, fmt.Errorf("no iptables-restore on PATH: install iptables")
	}
	if !legacyTablesExist() {
		return Backend{Name: "nft"}, nil
	}
	count := func(b Backend) (int, error) {
		n := 0
		for _, f := range []Family{IPv4, IPv6} {
			out, err := run(r, ctx, b.Tool(f, "save"), nil, nil)
			if err != nil {
				if f == IPv6 && !ipv6Available() {
					continue
				}
				return 0, err
			}
			n += bytes.Count(out, []byte("\n-A "))
		}
		return n, nil
	}
	legacyRules, err := count(Backend{Name: "legacy"})
	if err != nil {
		return Backend{}, err
	}
	nftRules, err := count(Backend{Name: "nft"})
	if err != nil {
		return Backend{}, err
	}
	if legacyRules > nftRules {
		return Backend{Name: "legacy"}, nil
	}
	return Backend{Name: "nft"}, nil
}

func hasTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// maxProcTableNames bounds the read of a namespace's list of legacy tables, a few short names.
const maxProcTableNames = 64 << 10

// legacyTablesExist reads the calling thread's namespace's list of legacy tables, IPv4 and IPv6.
func legacyTablesExist() bool {
	for _, name := range []string{"ip_tables_names", "ip6_tables_names"} {
		data, err := readfile.Regular("/proc/thread-self/net/"+name, maxProcTableNames)
		if err == nil && len(bytes.TrimSpace(data)) > 0 {
			return true
		}
	}
	return false
}

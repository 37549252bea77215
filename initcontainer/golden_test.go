package initcontainer

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/golden"
)

var update = flag.Bool("update", false, "rewrite the golden rules")

// TestGoldenScripts pins the rules of each scenario, as --dry-run prints them, in both syntaxes:
// <scenario>.rules for iptables-restore, <scenario>.nft for nft.
// Regenerate with: go test ./initcontainer -run TestGoldenScripts -update
func TestGoldenScripts(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			for backend, ext := range map[api.Backend]string{api.BackendIPTables: ".rules", api.BackendNFTables: ".nft"} {
				got := NewPlan(s.config(), testHost, backend).Scripts()
				golden.Check(t, filepath.Join("testdata", "golden", s.name+ext), got, *update)
			}
		})
	}
}

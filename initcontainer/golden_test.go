package initcontainer

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/meshinit/meshinit/test/golden"
)

var update = flag.Bool("update", false, "rewrite the golden restore scripts")

// TestGoldenScripts pins the restore scripts of each scenario, as --dry-run prints them.
// Regenerate with: go test ./initcontainer -run TestGoldenScripts -update
func TestGoldenScripts(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			got := NewPlan(s.config(), testHost).Scripts()
			golden.Check(t, filepath.Join("testdata", "golden", s.name+".rules"), got, *update)
		})
	}
}

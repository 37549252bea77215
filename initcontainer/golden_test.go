package initcontainer

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden restore scripts")

// TestGoldenScripts pins the restore scripts of each scenario, as --dry-run prints them.
// Regenerate with: go test ./initcontainer -run TestGoldenScripts -update
func TestGoldenScripts(t *testing.T) {
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			got := NewPlan(s.config(), testHost).Scripts()
			path := filepath.Join("testdata", "golden", s.name+".rules")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (run with -update if intended):\n%s", path, got)
			}
		})
	}
}

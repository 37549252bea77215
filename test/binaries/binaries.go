// Package binaries builds the project's commands once per test process, so that tests run the
// real binaries as users do.
package binaries

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/meshinit/meshinit/test/prereq"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
	dir   string
)

// Build compiles cmd/<name> as `make build` does (static and stripped), once per test process,
// and returns the binary's path.
func Build(t testing.TB, name string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if path, ok := built[name]; ok {
		return path
	}
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "meshinit-bin-"); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", path, "./cmd/"+name)
	cmd.Dir = prereq.RepoRoot(t)
	// Static, as shipped: no dynamic loader at start-up.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	built[name] = path
	return path
}

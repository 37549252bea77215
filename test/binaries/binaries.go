// Package binaries builds the project's commands once per test process, so that tests run the
// real binaries as users do, and lists the packages they link.
package binaries

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/meshinit/meshinit/test/prereq"
)

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// Build compiles cmd/<name> as `make build` does (static and stripped), once per test process,
// into bin/test/ (git-ignored, removed by `make clean`, so nothing piles up in /tmp), and returns
// the binary's path. Test processes run in parallel: each builds to a file of its own and renames
// it into place, which leaves any process running the previous binary undisturbed.
func Build(t testing.TB, name string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if path, ok := built[name]; ok {
		return path
	}
	root := prereq.RepoRoot(t)
	dir := filepath.Join(root, "bin", "test")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", tmp, "./cmd/"+name)
	cmd.Dir = root
	// Static, as shipped: no dynamic loader at start-up.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		t.Fatal(err)
	}
	built[name] = path
	return path
}

// Deps are the packages cmd/<name> links, as `go list -deps` lists them.
func Deps(t testing.TB, name string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "./cmd/"+name)
	cmd.Dir = prereq.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	return deps
}

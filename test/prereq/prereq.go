// Package prereq checks what a test needs from the machine: root, binaries, files. Where one is
// missing the test is skipped on a developer's machine and fails under CI=true, so that CI can never
// pass by skipping the real parts.
package prereq

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/mod/modfile"
)

// InCI reports whether the tests run in CI, where nothing may be skipped for want of a prerequisite.
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing reports a missing prerequisite: a failure under CI=true, a skip elsewhere.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing (CI=true, so this fails instead of skipping): "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// Root requires running as root on Linux.
func Root(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		Missing(t, "this test needs root on Linux (run: sudo make test)")
	}
}

// Binary returns the path of name, looked up on PATH, or reports it missing.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s is not on PATH (run: make provision)", name)
	}
	return path
}

// File returns path when it exists, or reports it missing.
func File(t testing.TB, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		Missing(t, "%s does not exist (run: make provision)", path)
	}
	return path
}

// Image returns the OCI layout of the image built as name in repo's bin/images, or reports it
// missing.
func Image(t testing.TB, repo, name string) string {
	t.Helper()
	dir := filepath.Join(repo, "bin", "images", name)
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		Missing(t, "the image %s is not built in %s (run: make images)", name, dir)
	}
	return dir
}

// RepoRoot returns the repository's top directory, found from the working directory upwards
// (tests run in their package's folder).
func RepoRoot(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := FindRepoRoot(wd)
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// FindRepoRoot returns the nearest parent of dir, dir included, with the go.mod of this module.
func FindRepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modfile.ModulePath(data) == module {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod of %s above %s", module, dir)
		}
		dir = parent
	}
}

const module = "github.com/meshinit/meshinit"

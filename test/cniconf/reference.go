package cniconf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/meshinit/meshinit/test/prereq"
)

const pluginsModule = "github.com/containernetworking/plugins"

var (
	referenceOnce sync.Once
	referenceDir  string
	referenceErr  error
)

// ReferencePlugins is a directory with ptp and host-local from the CNI project's reference plugins,
// at the version go.mod requires: Debian's (DebianPlugins) stop at CNI 1.0.0, and a chain of
// version 1.1.0 needs a main plugin that speaks it. They are built once per test process into
// bin/test, with `go install`, from the module proxy or the module cache.
func ReferencePlugins(t testing.TB) string {
	t.Helper()
	root := prereq.RepoRoot(t)
	referenceOnce.Do(func() { referenceDir, referenceErr = buildReference(root) })
	if referenceErr != nil {
		t.Fatal(referenceErr)
	}
	return referenceDir
}

func buildReference(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	mod, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		return "", err
	}
	version := ""
	for _, r := range mod.Require {
		if r.Mod.Path == pluginsModule {
			version = r.Mod.Version
		}
	}
	if version == "" {
		return "", fmt.Errorf("go.mod requires no %s", pluginsModule)
	}
	dir := filepath.Join(root, "bin", "test", "cni-reference-"+version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".cni-reference-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// Outside the module, so that go install reads the plugins' own go.mod.
	cmd := exec.Command("go", "install", "-trimpath", pluginsModule+"/plugins/main/ptp@"+version, pluginsModule+"/plugins/ipam/host-local@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOBIN="+tmp, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the reference plugins %s: %v\n%s", version, err, out)
	}
	for _, p := range []string{"ptp", "host-local"} {
		// A rename each: a test process running the previous binary is left undisturbed.
		if err := os.Rename(filepath.Join(tmp, p), filepath.Join(dir, p)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

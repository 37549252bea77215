package main

import (
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/binaries"
)

// TestNoHeavyDependencies keeps kuma-init small and quick to start (BenchmarkKumaInitInstall): it
// runs in every pod, before the application, and must not grow a Kubernetes client or a CLI
// framework.
func TestNoHeavyDependencies(t *testing.T) {
	for _, dep := range binaries.Deps(t, "kuma-init") {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") || strings.Contains(dep, "spf13/cobra") {
			t.Errorf("kuma-init depends on %s", dep)
		}
	}
}

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoHeavyDependencies keeps kuma-init small and quick to start: it runs in every pod, before
// the application, and must not grow a Kubernetes client or a CLI framework.
func TestNoHeavyDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") || strings.Contains(dep, "spf13/cobra") {
			t.Errorf("kuma-init depends on %s", dep)
		}
	}
}

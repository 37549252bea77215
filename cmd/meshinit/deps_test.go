package main

import (
	"slices"
	"testing"

	"github.com/meshinit/meshinit/test/binaries"
)

// TestNoServingDependencies keeps the CLI to what it runs: `meshinit inject` shares injection with
// the webhook through webhook/inject, not the injector's manager, its serving edge or the CNI-mode
// controllers, which belong to cmd/injector.
func TestNoServingDependencies(t *testing.T) {
	deps := binaries.Deps(t, "meshinit")
	forbidden := []string{
		"sigs.k8s.io/controller-runtime/pkg/manager",
		"sigs.k8s.io/controller-runtime/pkg/webhook",
		"github.com/meshinit/meshinit/webhook",
		"github.com/meshinit/meshinit/cni/multus",
		"github.com/meshinit/meshinit/cni/taint",
	}
	for _, f := range forbidden {
		if slices.Contains(deps, f) {
			t.Errorf("meshinit depends on %s", f)
		}
	}
	if want := "github.com/meshinit/meshinit/webhook/inject"; !slices.Contains(deps, want) {
		t.Errorf("meshinit no longer depends on %s: is the test still about the right binary?", want)
	}
}

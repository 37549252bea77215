package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/binaries"
)

// TestBadSettingStopsTheInjector: a malformed KUMA_RUNTIME_* value stops the injector before it
// starts anything, with a message naming the variable.
func TestBadSettingStopsTheInjector(t *testing.T) {
	injector := binaries.Build(t, "injector")
	cmd := exec.Command(injector)
	cmd.Env = append(os.Environ(),
		"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS=22,http",
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID=0")
	out, err := cmd.CombinedOutput()
	exitErr, ok := errors.AsType[*exec.ExitError](err)
	if !ok || exitErr.ExitCode() != 2 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{
		"injector: the settings are not valid; nothing was started:",
		`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID: "0" is not a UID the sidecar can run as`,
		`KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS: "http" in "22,http" is not a port number`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

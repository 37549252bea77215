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

// TestUnusableSidecarStopsTheInjector: a sidecar whose kuma-dp version neither the setting nor
// the image's tag says, or a control plane CA file that is not PEM certificates, stops the
// injector at start, rather than every pod later.
func TestUnusableSidecarStopsTheInjector(t *testing.T) {
	injector := binaries.Build(t, "injector")
	ca := t.TempDir() + "/ca.crt"
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  string
		want string
	}{
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=registry.local/kuma-dp:latest",
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION: is empty, and the tag of the sidecar image "registry.local/kuma-dp:latest" says no kuma-dp version`},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE=" + ca,
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE: "` + ca + `" does not hold PEM certificates only`},
	} {
		cmd := exec.Command(injector)
		cmd.Env = append(os.Environ(), tc.env)
		out, err := cmd.CombinedOutput()
		exitErr, ok := errors.AsType[*exec.ExitError](err)
		if !ok || exitErr.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s: exit %v, output lacks %q:\n%s", tc.env, err, tc.want, out)
		}
	}
}

package cnichain

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/cniconf"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// TestEveryVersion runs kuma-cni through libcni at every CNI version a conflist may declare, none
// included, chained after ptp and host-local: Debian's, which speak up to 1.0.0, and the CNI
// project's own (built at go.mod's version), which speak 1.1.0 too. ADD must answer in the list's
// version with the main plugin's result and install the injected pod's rules; CHECK (0.4.0 on)
// must pass, STATUS and GC (1.1.0) too, and DEL.
func TestEveryVersion(t *testing.T) {
	requirePlugins(t)
	env := kubeenv.Start(t)
	kubeconfig := env.WriteKubeconfig(t)
	kumaCNI := binaries.Build(t, "kuma-cni")
	createPods(t, env)
	debian := append([]string{""}, cni.SupportedVersions[:len(cni.SupportedVersions)-1]...)
	if debian[len(debian)-1] != "1.0.0" {
		t.Fatalf("Debian's plugins speak up to 1.0.0, and the versions before 1.1.0 end with %s", debian[len(debian)-1])
	}
	for k, plugins := range []struct {
		name, dir string
		versions  []string
	}{
		{"debian", cniconf.DebianPlugins, debian},
		{"reference", cniconf.ReferencePlugins(t), append([]string{""}, cni.SupportedVersions...)},
	} {
		runtime := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(kumaCNI), plugins.dir}, t.TempDir(), nil)
		for i, v := range plugins.versions {
			name := v
			if v == "" {
				name = "none"
			}
			t.Run(plugins.name+"/"+name, func(t *testing.T) {
				list := chain(t, v, kubeconfig, 20+10*k+i)
				runChain(t, runtime, list, v)
			})
		}
	}
}

// runChain runs list for the pods of createPods and checks what kuma-cni did; the list's runtime
// reads the pods' results at version (none: 0.1.0, as libcni reads a list without one).
func runChain(t *testing.T, runtime *libcni.CNIConfig, list *libcni.NetworkConfigList, version string) {
	t.Helper()
	want := version
	if want == "" {
		want = "0.1.0"
	}
	ctx := context.Background()
	meshed, plain := newPods(t)
	for _, p := range []pod{meshed, plain} {
		rt := p.runtimeConf()
		result, err := runtime.AddNetworkList(ctx, list, rt)
		if err != nil {
			t.Fatalf("ADD %s: %v", p.name, err)
		}
		t.Cleanup(func() {
			if err := runtime.DelNetworkList(ctx, list, rt); err != nil {
				t.Errorf("DEL %s: %v", p.name, err)
			}
		})
		checkResult(t, p.name, result, want)
		if atLeast(version, "0.4.0") {
			if err := runtime.CheckNetworkList(ctx, list, rt); err != nil {
				t.Errorf("CHECK %s: %v", p.name, err)
			}
		}
	}
	checkCapture(t, meshed, plain)
	if atLeast(version, "1.1.0") {
		if err := runtime.GetStatusNetworkList(ctx, list); err != nil {
			t.Errorf("STATUS: %v", err)
		}
		if err := runtime.GCNetworkList(ctx, list, &libcni.GCArgs{}); err != nil {
			t.Errorf("GC: %v", err)
		}
	}
}

// checkResult: the result is in the list's version, and is ptp's: the pod's address.
func checkResult(t *testing.T, pod string, result types.Result, version string) {
	t.Helper()
	if result.Version() != version {
		t.Errorf("ADD %s answered in version %s, want %s", pod, result.Version(), version)
	}
	cur, err := current.NewResultFromResult(result)
	if err != nil {
		t.Fatalf("ADD %s: the result does not convert: %v", pod, err)
	}
	if len(cur.IPs) == 0 || !strings.HasPrefix(cur.IPs[0].Address.IP.String(), "10.222.") {
		t.Errorf("ADD %s did not pass ptp's result on: %+v", pod, cur)
	}
}

func atLeast(v, min string) bool {
	if v == "" {
		return false
	}
	ok, _ := version.GreaterThanOrEqualTo(v, min)
	return ok
}

func jsonOf(t *testing.T, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	kubefake "helm.sh/helm/v4/pkg/kube/fake"
	release "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage"
	"helm.sh/helm/v4/pkg/storage/driver"

	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// generated matches the certificate material the chart makes anew at each render.
var generated = regexp.MustCompile(`(?m)^(\s+(?:ca\.crt|tls\.crt|tls\.key|caBundle)): LS0t\S{200,}$`)

// helmTemplate renders the chart directory as `helm template --set ...` does, independently of
// the embedded copy and of meshinit's own value handling.
func helmTemplate(t *testing.T, set []string) string {
	t.Helper()
	ch, err := loader.LoadDir(filepath.Join("..", "..", "charts", "meshinit"))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := (&values.Options{Values: set}).MergeValues(getter.Providers{})
	if err != nil {
		t.Fatal(err)
	}
	install := action.NewInstall(&action.Configuration{
		Releases:     storage.Init(driver.NewMemory()),
		KubeClient:   &kubefake.PrintingKubeClient{Out: io.Discard},
		Capabilities: common.DefaultCapabilities,
	})
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName, install.Namespace, install.Replace = "meshinit", "kuma-system", true
	install.IncludeCRDs = true // as helm template --include-crds
	if install.KubeVersion, err = common.ParseKubeVersion(kubeenv.KubeVersion); err != nil {
		t.Fatal(err)
	}
	rel, err := install.RunWithContext(t.Context(), ch, vals)
	if err != nil {
		t.Fatal(err)
	}
	return rel.(*release.Release).Manifest
}

// TestInstallControlPlaneIsHelm: for every case, `meshinit install control-plane` prints the
// namespace, then exactly what Helm renders from the chart's directory with the same --set flags,
// its CRDs included.
func TestInstallControlPlaneIsHelm(t *testing.T) {
	for _, c := range chartcases.Cases {
		t.Run(c.Name, func(t *testing.T) {
			stdout, stderr, err := run(t, "", append([]string{"install", "control-plane", "--kube-version", kubeenv.KubeVersion, "--certificate-from-cluster=false"}, c.Args()...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if stderr != "" {
				t.Errorf("stderr: %s", stderr)
			}
			const namespace = "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: kuma-system\n"
			manifest, ok := strings.CutPrefix(stdout, namespace)
			if !ok {
				t.Fatalf("the output does not start with the namespace:\n%.300s", stdout)
			}
			want := generated.ReplaceAllString(helmTemplate(t, c.Set), "$1: <generated>")
			if got := generated.ReplaceAllString(manifest, "$1: <generated>"); got != want {
				t.Errorf("meshinit and Helm render differently:\n--- meshinit\n%s\n--- helm\n%s", got, want)
			}
		})
	}
}

func TestInstallControlPlaneFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(file, []byte("controlPlane:\n  replicas: 3\ncni:\n  enabled: true\n  chained: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, err := run(t, "", "install", "control-plane", "--kube-version", kubeenv.KubeVersion, "-f", file,
		"--set", "controlPlane.replicas=2", "--namespace", "mesh-system", "--release-name", "mesh", "--create-namespace=false")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"replicas: 2", "name: mesh-meshinit-cni", "namespace: mesh-system", `value: "true"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("no %q in the output", want)
		}
	}
	if strings.Contains(stdout, "kind: Namespace") {
		t.Error("--create-namespace=false printed the namespace")
	}
}

// TestInstallControlPlaneRefuses: bad input prints nothing on stdout and says what is wrong.
func TestInstallControlPlaneRefuses(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--set", "cni.chained=maybe"}, `cni.chained: "maybe" is a string; accepted: a boolean`},
		{[]string{"--set", "cni.chaned=true"}, `cni: has no key "chaned"`},
		{[]string{"--namespace", "Kuma_System"}, `--namespace "Kuma_System" is not a namespace name`},
		{[]string{"--set", "controlPlane.envVars.KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME=soon"},
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME: "soon"`},
		{[]string{"-f", "/nonexistent/values.yaml"}, "/nonexistent/values.yaml"},
		{[]string{"--set", "a.b"}, "key \"b\" has no value"},
	} {
		stdout, stderr, err := run(t, "", append([]string{"install", "control-plane", "--kube-version", kubeenv.KubeVersion}, tc.args...)...)
		if err == nil || stdout != "" || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: err %v, stdout %.100q, stderr %q; want %q", tc.args, err, stdout, stderr, tc.want)
		}
	}
}

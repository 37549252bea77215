package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/webhook/inject"
)

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {securityContext: {runAsNonRoot: true}, containers: [{name: app, image: nginx}]}
`

// run runs meshinit in-process, as a shell would.
func run(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetArgs(args)
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

func TestInject(t *testing.T) {
	file := filepath.Join(t.TempDir(), "app.yaml")
	if err := os.WriteFile(file, []byte(deployment), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, stdin string
		args        []string
		native      bool
	}{
		{"file", "", []string{"inject", "-f", file}, true},
		{"stdin", deployment, []string{"inject", "-f", "-"}, true},
		{"classic layout", deployment, []string{"inject", "-f", "-", "--native-sidecars=false"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := run(t, tc.stdin, tc.args...)
			if err != nil {
				t.Fatalf("meshinit %s: %v\n%s", strings.Join(tc.args, " "), err, stderr)
			}
			var d appsv1.Deployment
			if err := yaml.UnmarshalStrict([]byte(stdout), &d); err != nil {
				t.Fatalf("the output is not a Deployment: %v\n%s", err, stdout)
			}
			pod := d.Spec.Template
			if pod.Annotations[api.AnnotationSidecarInjected] != "true" {
				t.Errorf("not injected:\n%s", stdout)
			}
			sidecars := map[bool][]corev1.Container{true: pod.Spec.InitContainers, false: pod.Spec.Containers}[tc.native]
			if !slices.ContainsFunc(sidecars, func(c corev1.Container) bool { return c.Name == inject.SidecarName }) {
				t.Errorf("native=%t: kuma-sidecar is not where it should be:\n%s", tc.native, stdout)
			}
			if stderr != "" {
				t.Errorf("stderr: %s", stderr)
			}
		})
	}
}

func TestInjectDenied(t *testing.T) {
	denied := strings.Replace(deployment, "{labels: {app: web}}",
		"{labels: {app: web}, annotations: {traffic.kuma.io/exclude-inbound-ports: x}}", 1)
	stdout, stderr, err := run(t, denied, "inject", "-f", "-")
	if err == nil {
		t.Fatalf("no error; output:\n%s", stdout)
	}
	want := "Deployment demo/web: traffic.kuma.io/exclude-inbound-ports"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("err = %q, want it to start with %q", err, want)
	}
	if !strings.Contains(stderr, "Error: "+err.Error()) {
		t.Errorf("stderr = %q, want the error", stderr)
	}
	if stdout != "" {
		t.Errorf("output written despite the denial:\n%s", stdout)
	}
}

func TestInjectBadEnvironment(t *testing.T) {
	t.Setenv("KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID", "nobody")
	t.Setenv("KUMA_RUNTIME_KUBERNETES_NO_SUCH_SETTING", "1")
	stdout, stderr, err := run(t, deployment, "inject", "-f", "-")
	if err == nil || !strings.Contains(err.Error(), "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID") {
		t.Errorf("err = %v, want one naming the variable", err)
	}
	if !strings.Contains(stderr, "warning: KUMA_RUNTIME_KUBERNETES_NO_SUCH_SETTING is not a setting") {
		t.Errorf("stderr = %q, want a warning about the unknown variable", stderr)
	}
	if stdout != "" {
		t.Errorf("output written:\n%s", stdout)
	}
}

func TestInjectNeedsAFile(t *testing.T) {
	if _, _, err := run(t, "", "inject"); err == nil || !strings.Contains(err.Error(), `"filename" not set`) {
		t.Errorf("err = %v, want the missing -f", err)
	}
}

// TestInjectNamespaceLabels: --namespace-labels stand for the labels of namespaces the input does
// not hold; empty, nothing is injected but by a pod's own label.
func TestInjectNamespaceLabels(t *testing.T) {
	stdout, _, err := run(t, deployment, "inject", "-f", "-", "--namespace-labels", "")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout, "kuma-sidecar") {
		t.Errorf("injected in a namespace without labels:\n%s", stdout)
	}
	_, _, err = run(t, deployment, "inject", "-f", "-", "--namespace-labels", "kuma.io/sidecar-injection")
	want := `--namespace-labels: "kuma.io/sidecar-injection" has no '='; accepted: key=value pairs separated by ',', such as kuma.io/sidecar-injection=enabled, or empty for none`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

// TestInjectNamespaceFlag: --namespace must be a name a namespace can have, since it becomes the
// namespace of the documents that name none.
func TestInjectNamespaceFlag(t *testing.T) {
	stdout, _, err := run(t, deployment, "inject", "-f", "-", "-n", "Bad_NS!")
	want := `--namespace: "Bad_NS!" is not a namespace name; accepted: a namespace name such as kube-system`
	if err == nil || err.Error() != want || stdout != "" {
		t.Errorf("err = %v, stdout %q; want %s and nothing written", err, stdout, want)
	}
}

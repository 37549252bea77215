package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	"sigs.k8s.io/yaml"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/golden"
	"github.com/meshinit/meshinit/webhook/inject"
)

var update = flag.Bool("update", false, "rewrite the golden files of injected pods")

// goldenCase is an input pod in testdata/golden/<name>.in.yaml and how the cluster around it is set
// up; the result is pinned in <name>.out.yaml. Names say the behaviour each pins.
type goldenCase struct {
	nsLabels map[string]string // nil: the namespace is labelled enabled
	env      []string          // the injector's KUMA_RUNTIME_* settings
	classic  bool              // an API server older than 1.29
	ca       bool              // the control plane's CA is testdata/control-plane-ca.crt
}

const (
	kumaDP210   = "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=docker.io/kumahq/kuma-dp:2.10.11"
	kumaInit210 = "KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_IMAGE=docker.io/kumahq/kuma-init:2.10.11"
	cniMode     = "KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED=true"
	nftables    = "KUMA_RUNTIME_KUBERNETES_INJECTOR_TRANSPARENT_PROXY_BACKEND=nftables"
)

var goldenCases = map[string]goldenCase{
	"namespace-label-disabled":      {nsLabels: map[string]string{api.LabelSidecarInjection: "disabled"}},
	"not-labelled":                  {nsLabels: map[string]string{}},
	"enabled-by-pod-label":          {nsLabels: map[string]string{}},
	"mesh-from-namespace-label":     {nsLabels: map[string]string{api.LabelSidecarInjection: "enabled", api.LabelMesh: "orders"}},
	"init-first-classic-layout":     {classic: true},
	"classic-layout":                {classic: true},
	"app-init-containers-run-first": {classic: true},
	"cluster-defaults-from-environment": {env: []string{
		"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS=22",
		"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS=169.254.169.254",
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=registry.local/kuma-dp:2.14.9",
		"KUMA_INJECTOR_INIT_CONTAINER_IMAGE=registry.local/kuma-init:9",
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID=1234",
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GUI=1235",
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME=1m",
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE=ipv4",
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT=15055",
		"KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL=https://cp.mesh.example:5678",
		"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY=1Gi",
	}},
	"cluster-env-vars-then-annotation-env-vars": {env: []string{
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS=SHARED=from-cluster;CLUSTER=1"}},
	"privileged-init-container":                   {env: []string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_PRIVILEGED=true"}},
	"cni-mode-validation-container":               {env: []string{cniMode}},
	"cni-mode-keeps-other-multus-networks":        {env: []string{cniMode}, classic: true},
	"cni-mode-validation-kuma-2.10-image":         {env: []string{cniMode, kumaInit210}},
	"cni-mode-gateway-no-validation":              {env: []string{cniMode}},
	"transparent-proxy-backend-nftables":          {env: []string{nftables}},
	"cni-mode-transparent-proxy-backend-nftables": {env: []string{cniMode, nftables}},
	"kuma-classic-native-sidecar-probes-kept":     {classic: true},
	"kuma-init-uid-before-rules-warned":           {classic: true},
	"kuma-empty-exclude-falls-back": {env: []string{
		"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS=22",
		"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS=5432,6379",
		"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS=169.254.169.254",
	}},
	"kuma-dp-2.10-no-tp-flag":                 {env: []string{kumaDP210}},
	"kuma-dp-2.10-envoy-admin-port":           {env: []string{kumaDP210}},
	"kuma-dp-3.0":                             {env: []string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=docker.io/kumahq/kuma-dp:3.0.0"}},
	"kuma-sidecar-concurrency-from-cpu-limit": {env: []string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU=3500m"}},
	"kuma-init-image-kuma-2.10":               {env: []string{kumaInit210}},
	"denied-cluster-env-moves-probe-proxy": {env: []string{
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS=KUMA_APPLICATION_PROBE_PROXY_PORT:9009"}},
	"kuma-control-plane-ca":                          {ca: true},
	"cni-mode-multus-networks-json-kept-valid":       {env: []string{cniMode}},
	"denied-cni-mode-multus-networks-malformed-json": {env: []string{cniMode}},
}

// clusterObjects are the objects of the cluster around a case: Kuma's ConfigMaps and
// ContainerPatch objects, in testdata/golden/<name>.cluster.yaml when the case has any.
func clusterObjects(t *testing.T, name string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden", name+".cluster.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range strings.Split(string(data), "\n---\n") {
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, obj)
	}
	return objs
}

// goldenNames lists every case, from the input files.
func goldenNames(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.in.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".in.yaml"))
	}
	return names
}

func (c goldenCase) injector(t *testing.T) *inject.Injector {
	t.Helper()
	env := c.env
	if c.ca {
		ca, err := filepath.Abs(filepath.Join("testdata", "control-plane-ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		env = append(slices.Clone(env), "KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE="+ca)
	}
	cfg, _, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ReadCACert(); err != nil {
		t.Fatal(err)
	}
	return &inject.Injector{Config: cfg, NativeSidecars: !c.classic}
}

func (c goldenCase) labels() map[string]string {
	if c.nsLabels == nil {
		return map[string]string{api.LabelSidecarInjection: "enabled"}
	}
	return c.nsLabels
}

// outcome is what a path made of one input: the pod, or the denial.
type outcome struct {
	result   string
	warnings []string
	pod      []byte
	denial   string
}

func (o outcome) render() []byte {
	var b bytes.Buffer
	b.WriteString("# result: " + o.result + "\n")
	for _, w := range o.warnings {
		b.WriteString("# warning: " + w + "\n")
	}
	for _, line := range strings.Split(o.denial, "\n") {
		if line != "" {
			b.WriteString("# " + line + "\n")
		}
	}
	b.Write(o.pod)
	return b.Bytes()
}

// TestGoldenInjection runs every input through the admission handler, as the API server would,
// and pins the result. Regenerate with: go test ./webhook -run TestGoldenInjection -update
func TestGoldenInjection(t *testing.T) {
	names := goldenNames(t)
	if len(names) < 40 {
		t.Errorf("%d golden cases; the contract asks for at least 40", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			c := goldenCases[name]
			input := readGolden(t, name+".in.yaml")
			got := throughHandler(t, name, c, input)
			golden.Check(t, filepath.Join("testdata", "golden", name+".out.yaml"), got.render(), *update)
		})
	}
}

func readGolden(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "golden", file))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func throughHandler(t *testing.T, name string, c goldenCase, input []byte) outcome {
	t.Helper()
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict(input, &pod); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(&pod)
	if err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	clientgoscheme.AddToScheme(scheme)
	scheme.AddKnownTypeWithName(containerPatchKind, &unstructured.Unstructured{})
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("ConfigMap"), meta.RESTScopeNamespace)
	mapper.Add(containerPatchKind, meta.RESTScopeNamespace)
	objs := []client.Object{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: pod.Namespace, Labels: c.labels()}}}
	for _, obj := range clusterObjects(t, name) {
		objs = append(objs, obj)
	}
	cluster := fake.NewClientBuilder().WithScheme(scheme).WithRESTMapper(mapper).WithObjects(objs...).Build()
	in := c.injector(t)
	in.Cluster = &apiCluster{cached: cluster, live: cluster,
		clusterConfigMap: client.ObjectKey{Namespace: in.Config.SystemNamespace, Name: in.Config.Injector.TransparentProxyConfigMap}}
	h := &Handler{Injector: in, Namespaces: cluster, Decoder: admission.NewDecoder(scheme), Log: log.Log}
	resp := h.Handle(context.Background(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "golden", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
		Namespace: pod.Namespace, Object: runtime.RawExtension{Raw: raw},
	}})
	if !resp.Allowed {
		return outcome{result: "denied", denial: resp.Result.Message}
	}
	out := raw
	if len(resp.Patches) > 0 {
		patch, err := json.Marshal(resp.Patches)
		if err != nil {
			t.Fatal(err)
		}
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			t.Fatal(err)
		}
		if out, err = p.Apply(raw); err != nil {
			t.Fatal(err)
		}
	}
	result := "injected"
	if len(resp.Patches) == 0 {
		result = "skipped (" + resp.Result.Message + ")"
	}
	return outcome{result: result, warnings: resp.Warnings, pod: toYAML(t, out)}
}

func toYAML(t *testing.T, podJSON []byte) []byte {
	t.Helper()
	var pod corev1.Pod
	if err := json.Unmarshal(podJSON, &pod); err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(&pod)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestGoldenInjectionIsIdempotent injects each injected golden pod again: nothing changes.
func TestGoldenInjectionIsIdempotent(t *testing.T) {
	for _, name := range goldenNames(t) {
		c := goldenCases[name]
		out := readGolden(t, name+".out.yaml")
		if !bytes.HasPrefix(out, []byte("# result: injected")) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			var pod corev1.Pod
			if err := yaml.Unmarshal(out, &pod); err != nil {
				t.Fatal(err)
			}
			res, err := c.injector(t).Inject(&pod, pod.Namespace, c.labels())
			if err != nil || res.Injected || res.Reason != inject.ReasonAlreadyInjected {
				t.Errorf("injecting an injected pod: %+v, %v", res, err)
			}
		})
	}
}

// TestGoldenThroughCLI gives every input to `meshinit inject`'s function: it must agree with the
// webhook on the pod, the warnings and the denial.
func TestGoldenThroughCLI(t *testing.T) {
	for _, name := range goldenNames(t) {
		t.Run(name, func(t *testing.T) {
			c := goldenCases[name]
			want := throughHandler(t, name, c, readGolden(t, name+".in.yaml"))
			// The cluster's objects come with the manifests, and are written out unchanged.
			input := readGolden(t, name+".in.yaml")
			if objs, err := os.ReadFile(filepath.Join("testdata", "golden", name+".cluster.yaml")); err == nil {
				input = slices.Concat(objs, []byte("\n---\n"), input)
			}
			var out bytes.Buffer
			warnings, err := inject.InjectManifests(bytes.NewReader(input), &out, c.injector(t),
				inject.ManifestOptions{Namespace: "default", NamespaceLabels: c.labels()})
			if want.result == "denied" {
				if err == nil || !strings.HasSuffix(err.Error(), ": "+want.denial) {
					t.Errorf("inject error %v, want the webhook's denial %q", err, want.denial)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range warnings {
				if _, text, ok := strings.Cut(w, ": "); ok {
					warnings[i] = text
				}
			}
			if !slices.Equal(warnings, want.warnings) {
				t.Errorf("warnings %q, want the webhook's %q", warnings, want.warnings)
			}
			docs := strings.Split(out.String(), "\n---\n")
			var pod corev1.Pod
			if err := yaml.Unmarshal([]byte(docs[len(docs)-1]), &pod); err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(&pod)
			if !bytes.Equal(toYAML(t, got), want.pod) {
				t.Errorf("meshinit inject made\n%s\nthe webhook made\n%s", toYAML(t, got), want.pod)
			}
		})
	}
}

// TestInjectorWritesOnlyProtectedAnnotations: every annotation injection adds or changes, in every
// golden case, is one the chart's admission policy keeps as written on injected pods (the marks,
// and api.AnnotationsKumaReads), but for kubectl's default container, which only kubectl reads.
func TestInjectorWritesOnlyProtectedAnnotations(t *testing.T) {
	protected := append([]string{api.AnnotationSidecarInjected, api.AnnotationTransparentProxyConfig, api.AnnotationDefaultContainer},
		api.AnnotationsKumaReads...)
	for _, name := range goldenNames(t) {
		c := goldenCases[name]
		var in corev1.Pod
		if err := yaml.UnmarshalStrict(readGolden(t, name+".in.yaml"), &in); err != nil {
			t.Fatal(err)
		}
		res, err := c.injector(t).Inject(&in, in.Namespace, c.labels())
		if err != nil || !res.Injected {
			continue
		}
		for key, value := range res.Pod.Annotations {
			if old, ok := in.Annotations[key]; (!ok || old != value) && !slices.Contains(protected, key) {
				t.Errorf("%s: injection writes %s, which the admission policy does not keep", name, key)
			}
		}
	}
}

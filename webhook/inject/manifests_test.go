package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/testconfig"
)

// manifestPodSpec runs as no root, which could switch to the sidecar's UID (a warning).
const manifestPodSpec = `{securityContext: {runAsNonRoot: true}, containers: [{name: app, image: nginx, ports: [{containerPort: 80}]}]}`

// manifestsOf holds one manifest of each injected kind, named web in namespace demo.
var manifestsOf = map[string]string{
	"Pod": "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: demo, labels: {app: web}}\nspec: " + manifestPodSpec + "\n",
	"Deployment": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: demo}\n" +
		"spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: " + manifestPodSpec + "\n",
	"StatefulSet": "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web, namespace: demo}\n" +
		"spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: " + manifestPodSpec + "\n",
	"DaemonSet": "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: web, namespace: demo}\n" +
		"spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: " + manifestPodSpec + "\n",
	"ReplicaSet": "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web, namespace: demo}\n" +
		"spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: " + manifestPodSpec + "\n",
	"Job": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: web, namespace: demo}\n" +
		"spec:\n  template:\n    metadata: {labels: {app: web}}\n    spec: " + manifestPodSpec + "\n",
	"CronJob": "apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: web, namespace: demo}\n" +
		"spec:\n  schedule: '*/5 * * * *'\n  jobTemplate:\n    spec:\n      template:\n        metadata: {labels: {app: web}}\n" +
		"        spec: " + manifestPodSpec + "\n",
}

const manifestService = `# The web service.
apiVersion: v1
kind: Service
metadata:
  name: web   # as the Deployment
  namespace: demo
spec:
  ports: [{port: 80}]   # flow style, kept as written
`

const manifestConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  # quoted and unquoted, kept as written
  a: "1"
  b: yes
`

var manifestNSLabels = map[string]string{api.LabelSidecarInjection: "enabled"}

func injectManifests(t *testing.T, input string, native bool) (string, []string, error) {
	t.Helper()
	var out bytes.Buffer
	warnings, err := InjectManifests(strings.NewReader(input), &out, &Injector{Config: testconfig.Default(), NativeSidecars: native},
		ManifestOptions{Namespace: "default", NamespaceLabels: manifestNSLabels})
	return out.String(), warnings, err
}

func mustInject(t *testing.T, input string, native bool) (string, []string) {
	t.Helper()
	out, warnings, err := injectManifests(t, input, native)
	if err != nil {
		t.Fatalf("InjectManifests: %v", err)
	}
	return out, warnings
}

// decodeWorkload reads an output document of one of podKinds.
func decodeWorkload(t *testing.T, kind, doc string) workload {
	t.Helper()
	w := podKinds[kind].new()
	if err := yaml.UnmarshalStrict([]byte(doc), w.obj); err != nil {
		t.Fatalf("decoding the output %s: %v\n%s", kind, err, doc)
	}
	return w
}

func assertTemplateInjected(t *testing.T, w workload, native bool) {
	t.Helper()
	if got := w.meta.Annotations[api.AnnotationSidecarInjected]; got != "true" {
		t.Errorf("annotation %s = %q, want \"true\"", api.AnnotationSidecarInjected, got)
	}
	names := func(cs []corev1.Container) (ns []string) {
		for _, c := range cs {
			ns = append(ns, c.Name)
		}
		return ns
	}
	inits, containers := names(w.spec.InitContainers), names(w.spec.Containers)
	if !slices.Contains(inits, InitName) {
		t.Errorf("init containers %v, want %s among them", inits, InitName)
	}
	if sidecarIn := map[bool][]string{true: inits, false: containers}[native]; !slices.Contains(sidecarIn, SidecarName) {
		t.Errorf("init containers %v, containers %v: want %s among the %s", inits, containers, SidecarName,
			map[bool]string{true: "init containers", false: "containers"}[native])
	}
}

func TestInjectManifestsKinds(t *testing.T) {
	for kind, manifest := range manifestsOf {
		for _, native := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/native=%t", kind, native), func(t *testing.T) {
				out, warnings := mustInject(t, manifest, native)
				if len(warnings) != 0 {
					t.Errorf("warnings: %q", warnings)
				}
				w := decodeWorkload(t, kind, out)
				assertTemplateInjected(t, w, native)
				wantNamespace := map[bool]string{true: "demo", false: ""}[kind == "Pod"]
				if w.meta.Namespace != wantNamespace {
					t.Errorf("the pod's namespace is %q, want %q: a template has none", w.meta.Namespace, wantNamespace)
				}
				if w.obj.GetNamespace() != "demo" || w.obj.GetName() != "web" {
					t.Errorf("the %s is %s/%s, want demo/web", kind, w.obj.GetNamespace(), w.obj.GetName())
				}
			})
		}
	}
}

func TestInjectManifestsPassesThroughByteForByte(t *testing.T) {
	disabled := strings.Replace(manifestsOf["Deployment"], "{labels: {app: web}}",
		"{labels: {app: web, kuma.io/sidecar-injection: disabled}}", 1)
	for _, tc := range []struct{ name, input string }{
		{"service", manifestService},
		{"config map", manifestConfigMap},
		{"unknown kind", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {containers: 3}\n"},
		{"pod label disabled", disabled},
		{"already injected pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, annotations: {kuma.io/sidecar-injected: \"true\"}}\nspec: {containers: [{name: kuma-sidecar}]}\n"},
		{"comment-only documents", "# header\n---\n" + manifestService + "---\n# nothing here\n\n---\n" + manifestConfigMap},
		{"JSON", `{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, warnings := mustInject(t, tc.input, true)
			if out != tc.input {
				t.Errorf("output differs from the input (-in +out):\n%s", cmp.Diff(tc.input, out))
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
		})
	}
}

// TestInjectManifestsSeparators pins what the YAML splitter normalizes: line ends, a final
// separator and comments on separator lines, not the documents' content.
func TestInjectManifestsSeparators(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"no newline at the end", manifestService + "---\n" + strings.TrimSuffix(manifestConfigMap, "\n"), manifestService + "---\n" + manifestConfigMap},
		{"empty documents", "---\n" + manifestService + "---\n---\n" + manifestConfigMap + "---\n", "---\n" + manifestService + "---\n---\n" + manifestConfigMap},
		{"comment on a separator", manifestService + "--- # the map\n" + manifestConfigMap, manifestService + "---\n" + manifestConfigMap},
		{"CRLF", strings.ReplaceAll(manifestService+"---\n"+manifestConfigMap, "\n", "\r\n"), manifestService + "---\n" + manifestConfigMap},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := mustInject(t, tc.input, true)
			if out != tc.want {
				t.Errorf("output (-want +got):\n%s", cmp.Diff(tc.want, out))
			}
		})
	}
}

func TestInjectManifestsKeepsOrder(t *testing.T) {
	input := manifestService + "---\n" + manifestsOf["Deployment"] + "---\n" + manifestConfigMap + "---\n" + manifestsOf["Pod"]
	out, _ := mustInject(t, input, true)
	docs := strings.Split(out, "---\n")
	if len(docs) != 4 {
		t.Fatalf("%d documents in the output, want 4:\n%s", len(docs), out)
	}
	if docs[0] != manifestService || docs[2] != manifestConfigMap {
		t.Errorf("the Service and the ConfigMap changed or moved:\n%s", out)
	}
	assertTemplateInjected(t, decodeWorkload(t, "Deployment", docs[1]), true)
	assertTemplateInjected(t, decodeWorkload(t, "Pod", docs[3]), true)
}

func TestInjectManifestsList(t *testing.T) {
	items, err := yaml.YAMLToJSON([]byte(manifestsOf["Deployment"]))
	if err != nil {
		t.Fatal(err)
	}
	svc, err := yaml.YAMLToJSON([]byte(manifestService))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, input string }{
		{"list", fmt.Sprintf(`{"apiVersion": "v1", "kind": "List", "items": [%s, %s]}`, items, svc)},
		{"nested list", fmt.Sprintf(`{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "List", "items": [%s, %s]}]}`, items, svc)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _ := mustInject(t, tc.input, true)
			var list metav1.List
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("the output is not a JSON List: %v\n%s", err, out)
			}
			if tc.name == "nested list" {
				if err := json.Unmarshal(list.Items[0].Raw, &list); err != nil {
					t.Fatal(err)
				}
			}
			if len(list.Items) != 2 {
				t.Fatalf("%d items, want 2", len(list.Items))
			}
			assertTemplateInjected(t, decodeWorkload(t, "Deployment", string(list.Items[0].Raw)), true)
			var gotSvc, wantSvc any
			_ = json.Unmarshal(list.Items[1].Raw, &gotSvc)
			_ = json.Unmarshal(svc, &wantSvc)
			if diff := cmp.Diff(wantSvc, gotSvc); diff != "" {
				t.Errorf("the Service changed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInjectManifestsJSON(t *testing.T) {
	deployment, err := yaml.YAMLToJSON([]byte(manifestsOf["Deployment"]))
	if err != nil {
		t.Fatal(err)
	}
	svc := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"}}`
	out, _ := mustInject(t, svc+"\n"+string(deployment), true)
	// A JSON stream stays one, which kubectl reads: no YAML separators between the objects.
	dec := json.NewDecoder(strings.NewReader(out))
	var docs []json.RawMessage
	for dec.More() {
		var doc json.RawMessage
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("the output is not a JSON stream: %v\n%s", err, out)
		}
		docs = append(docs, doc)
	}
	if len(docs) != 2 || string(docs[0]) != svc {
		t.Fatalf("want the Service as it was, then the Deployment:\n%s", out)
	}
	assertTemplateInjected(t, decodeWorkload(t, "Deployment", string(docs[1])), true)
}

func TestInjectManifestsWarnings(t *testing.T) {
	input := strings.Replace(manifestsOf["Deployment"], "{labels: {app: web}}", "{labels: {app: web}, annotations: {kuma.io/sidecar-injection: enabled}}", 1) +
		"---\n" + strings.Replace(manifestsOf["Deployment"], "apps/v1", "apps/v1beta2", 1)
	_, warnings := mustInject(t, input, true)
	want := []string{
		"Deployment demo/web: annotation kuma.io/sidecar-injection has no effect: it is read as a label",
		"document 2 (Deployment): apps/v1beta2 Deployment is passed through not injected: only apps/v1 Deployment is",
	}
	if diff := cmp.Diff(want, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

func TestInjectManifestsNamespace(t *testing.T) {
	deployment := strings.Replace(manifestsOf["Deployment"], ", namespace: demo", "", 1)
	var out bytes.Buffer
	_, err := InjectManifests(strings.NewReader(deployment), &out, &Injector{Config: testconfig.Default()},
		ManifestOptions{Namespace: "kube-system", NamespaceLabels: manifestNSLabels})
	if err != nil || out.String() != deployment {
		t.Errorf("a Deployment of kube-system, by default: got %v, output\n%s", err, out.String())
	}
	out.Reset()
	if _, err := InjectManifests(strings.NewReader(deployment), &out, &Injector{Config: testconfig.Default()},
		ManifestOptions{Namespace: "shop", NamespaceLabels: manifestNSLabels}); err != nil {
		t.Fatal(err)
	}
	w := decodeWorkload(t, "Deployment", out.String())
	assertTemplateInjected(t, w, false)
	if w.obj.GetNamespace() != "" || w.meta.Namespace != "" {
		t.Errorf("a namespace was written: %q, template %q", w.obj.GetNamespace(), w.meta.Namespace)
	}
}

func TestInjectManifestsDenial(t *testing.T) {
	denied := strings.Replace(manifestsOf["Deployment"], "{labels: {app: web}}",
		"{labels: {app: web}, annotations: {traffic.kuma.io/exclude-inbound-ports: x}}", 1)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"},
		Annotations: map[string]string{api.AnnotationExcludeInboundPorts: "x"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	_, webhookErr := (&Injector{Config: testconfig.Default()}).Inject(pod, "demo", manifestNSLabels)
	var want *Denial
	if !errors.As(webhookErr, &want) {
		t.Fatalf("the webhook does not deny the pod: %v", webhookErr)
	}

	out, _, err := injectManifests(t, manifestService+"---\n"+manifestsOf["Pod"]+"---\n"+denied, true)
	var got *Denial
	if !errors.As(err, &got) {
		t.Fatalf("err = %v, want a *Denial", err)
	}
	if err.Error() != "Deployment demo/web: "+want.Message {
		t.Errorf("err = %q, want %q", err, "Deployment demo/web: "+want.Message)
	}
	if out != "" {
		t.Errorf("output written despite the denial:\n%s", out)
	}
}

func TestInjectManifestsMalformed(t *testing.T) {
	for _, tc := range []struct{ name, input, want string }{
		{"not YAML", manifestService + "---\nkind: [Deployment\n", "document 2: yaml: line 1: did not find expected ',' or ']'"},
		{"not an object", "just a string\n", "document 1: json: cannot unmarshal string into Go value of type v1.TypeMeta"},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "document 1: apiVersion and kind are required"},
		{"no apiVersion", "kind: Service\n", "document 1: apiVersion and kind are required"},
		{"bad spec", strings.Replace(manifestsOf["Deployment"], "spec:\n", "spec:\n  replicas: three\n", 1),
			`document 1 (Deployment): json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32`},
		{"bad list item", `{"apiVersion": "v1", "kind": "List", "items": [{"kind": "Pod"}]}`,
			"document 1 (List) item 1: apiVersion and kind are required"},
		{"unknown field", strings.Replace(manifestsOf["Deployment"], "spec:\n", "spec:\n  replica: 3\n", 1),
			`document 1 (Deployment): unknown field "spec.replica": rewriting it would lose that`},
		{"bad separator", manifestService + "--- x\n" + manifestConfigMap, "document 1: invalid Yaml document separator: x"},
		{"bad JSON", `{"kind": "Service"} {"kind": `, "document 2: unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := injectManifests(t, tc.input, true)
			if err == nil || err.Error() != tc.want {
				t.Errorf("err = %v, want %s", err, tc.want)
			}
			if out != "" {
				t.Errorf("output written:\n%s", out)
			}
		})
	}
}

func TestInjectManifestsIdempotent(t *testing.T) {
	var all []string
	for _, kind := range []string{"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"} {
		all = append(all, manifestsOf[kind])
	}
	input := manifestService + "---\n" + strings.Join(all, "---\n") + "---\n" + manifestConfigMap
	for _, native := range []bool{true, false} {
		once, _ := mustInject(t, input, native)
		twice, _ := mustInject(t, once, native)
		if once == input {
			t.Fatal("nothing injected")
		}
		if twice != once {
			t.Errorf("native=%t: injecting the output again changed it (-once +twice):\n%s", native, cmp.Diff(once, twice))
		}
	}
}

// TestInjectManifestsNamespaceDocuments: a Namespace in the input gives its pods its labels, as
// the API server would; a namespace it holds none of has the options' labels.
func TestInjectManifestsNamespaceDocuments(t *testing.T) {
	input := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: plain\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: plain\nspec:\n  containers:\n  - name: app\n    image: x\n---\n" +
		"apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n  namespace: other\nspec:\n  containers:\n  - name: app\n    image: x\n"
	out, _ := mustInject(t, input, true)
	docs := strings.Split(out, "---\n")
	if len(docs) != 3 || strings.Contains(docs[1], SidecarName) || !strings.Contains(docs[2], SidecarName) {
		t.Errorf("the pod of the unlabelled Namespace is injected, or the other one is not:\n%s", out)
	}
}

// TestInjectManifestsBrokenClusterObject: a ConfigMap that does not decode passes through as it
// is, unless injection reads it.
func TestInjectManifestsBrokenClusterObject(t *testing.T) {
	broken := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tp\n  namespace: demo\ndata:\n  config.yaml: true\n---\n"
	pod := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\n  namespace: demo\n%sspec:\n  containers:\n  - name: app\n    image: x\n"
	mustInject(t, broken+fmt.Sprintf(pod, ""), true)
	_, _, err := injectManifests(t, broken+fmt.Sprintf(pod, "  annotations:\n    traffic.kuma.io/transparent-proxy-configmap-name: tp\n"), true)
	if err == nil || !strings.Contains(err.Error(), "document 1 (ConfigMap demo/tp): json: cannot unmarshal bool") {
		t.Errorf("error %v, want one naming the broken ConfigMap", err)
	}
}

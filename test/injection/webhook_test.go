package injection

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/webhook/inject"
)

func namespace(t *testing.T, labels map[string]string) string {
	t.Helper()
	e := shared.Get(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Labels: labels}}
	if err := e.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func pod(ns string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "app-", Namespace: ns, Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
	}
}

func injected(p *corev1.Pod) bool {
	return p.Annotations[api.AnnotationSidecarInjected] == "true" &&
		slices.ContainsFunc(p.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == inject.SidecarName })
}

var enabled = map[string]string{api.LabelSidecarInjection: "enabled"}
var disabled = map[string]string{api.LabelSidecarInjection: "disabled"}

func TestSelection(t *testing.T) {
	e := shared.Get(t)
	meshed, plain, off := namespace(t, enabled), namespace(t, nil), namespace(t, disabled)
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		inject bool
	}{
		{"a pod in a labelled namespace", pod(meshed, nil, nil), true},
		{"a pod disabled by its label in a labelled namespace", pod(meshed, disabled, nil), false},
		{"a pod enabled by its label in an unlabelled namespace", pod(plain, enabled, nil), true},
		{"a pod in an unlabelled namespace", pod(plain, nil, nil), false},
		{"a pod enabled by its label in a disabled namespace", pod(off, enabled, nil), true},
		{"a pod in a disabled namespace", pod(off, nil, nil), false},
		{"a labelled pod in kube-system", pod("kube-system", enabled, nil), false},
		{"a labelled pod in the injector's namespace", pod(e.Config.SystemNamespace, enabled, nil), false},
		{"a hostNetwork pod in a labelled namespace", func() *corev1.Pod {
			p := pod(meshed, nil, nil)
			p.Spec.HostNetwork = true
			return p
		}(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.pod
			if err := e.Client.Create(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			var got corev1.Pod
			if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(p), &got); err != nil {
				t.Fatal(err)
			}
			if injected(&got) != tc.inject {
				t.Errorf("injected = %v, want %v; containers %v, init containers %v", injected(&got), tc.inject, names(got.Spec.Containers), names(got.Spec.InitContainers))
			}
		})
	}
}

// TestMalformedNamespaceLabel: a namespace's malformed label refuses its unlabelled pods; a pod's
// own label wins over it, and such a pod, which both webhooks see, is injected once.
func TestMalformedNamespaceLabel(t *testing.T) {
	e := shared.Get(t)
	ns := namespace(t, map[string]string{api.LabelSidecarInjection: "maybe"})
	err := e.Client.Create(t.Context(), pod(ns, nil, nil))
	if err == nil || !strings.Contains(err.Error(), `"maybe"`) || !strings.Contains(err.Error(), api.LabelSidecarInjection) {
		t.Errorf("a pod in a namespace labelled %s=maybe: %v", api.LabelSidecarInjection, err)
	}
	p := pod(ns, enabled, nil)
	if err := e.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	sidecars := slices.DeleteFunc(slices.Clone(p.Spec.InitContainers), func(c corev1.Container) bool { return c.Name != inject.SidecarName })
	if !injected(p) || len(sidecars) != 1 {
		t.Errorf("a labelled pod in that namespace: init containers %v", names(p.Spec.InitContainers))
	}
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

func TestInjectedPodAsStored(t *testing.T) {
	e := shared.Get(t)
	p := pod(namespace(t, enabled), nil, map[string]string{api.AnnotationExcludeOutboundPorts: "5432"})
	if err := e.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if got := names(p.Spec.InitContainers); !slices.Equal(got, []string{inject.InitName, inject.SidecarName}) {
		t.Errorf("init containers %v, want kuma-init then the native sidecar", got)
	}
	if sc := p.Spec.InitContainers[1]; sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("kuma-sidecar is not a native sidecar on a %s API server", "1.37")
	}
	if p.Labels[api.LabelMesh] != "default" || p.Annotations[api.AnnotationDefaultContainer] != "app" {
		t.Errorf("labels %v annotations %v", p.Labels, p.Annotations)
	}
	cfg, err := api.ParseTransparentProxyConfig([]byte(p.Annotations[api.AnnotationTransparentProxyConfig]))
	if err != nil {
		t.Fatalf("the stored configuration does not parse: %v", err)
	}
	if got := cfg.Redirect.Outbound.ExcludePorts.String(); got != "5432" {
		t.Errorf("excluded outbound ports %q, want the annotation's 5432", got)
	}
}

func TestMalformedAnnotationIsDenied(t *testing.T) {
	e := shared.Get(t)
	p := pod(namespace(t, enabled), nil, map[string]string{
		api.AnnotationExcludeInboundPorts: "22,x",
		api.AnnotationBuiltinDNSPort:      "dns",
	})
	err := e.Client.Create(t.Context(), p)
	want := `admission webhook "namespace.sidecar-injector.meshinit.io" denied the request: ` +
		`traffic.kuma.io/exclude-inbound-ports: "x" in "22,x" is not a port number; accepted: ` + api.FormPortRanges + "\n" +
		`kuma.io/builtin-dns-port: "dns" is not a port number; accepted: a port number 1-65535`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("create error:\n got: %v\nwant it to contain:\n%s", err, want)
	}
	if !apierrors.IsForbidden(err) {
		t.Errorf("a denial should be Forbidden: %v", err)
	}
}

func TestSidecarUIDIsDenied(t *testing.T) {
	e := shared.Get(t)
	p := pod(namespace(t, enabled), nil, nil)
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](5678)}
	err := e.Client.Create(t.Context(), p)
	if err == nil || !strings.Contains(err.Error(), `container "app" runs as UID 5678, the sidecar's`) {
		t.Errorf("create error: %v", err)
	}
}

func TestDryRunCreateIsInjectedAndLeavesNothing(t *testing.T) {
	e := shared.Get(t)
	ns := namespace(t, enabled)
	p := pod(ns, nil, nil)
	p.GenerateName, p.Name = "", "dry"
	if err := e.Client.Create(t.Context(), p, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	if !injected(p) {
		t.Error("the dry-run create's answer is not injected")
	}
	err := e.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "dry"}, &corev1.Pod{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a dry-run create left a pod behind: %v", err)
	}
}

func TestWarningsReachTheClient(t *testing.T) {
	e := shared.Get(t)
	var mu sync.Mutex
	var warnings []string
	cfg := rest.CopyConfig(e.Rest)
	cfg.WarningHandlerWithContext = warningFunc(func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, msg)
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := pod(namespace(t, enabled), nil, map[string]string{
		api.LabelSidecarInjection:         "enabled",
		api.AnnotationExcludeInboundPorts: "9090",
	})
	if err := c.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, want := range []string{
		"annotation kuma.io/sidecar-injection has no effect: it is read as a label",
		"traffic.kuma.io/exclude-inbound-ports: 9090 is not a port any container declares",
	} {
		if !slices.Contains(warnings, want) {
			t.Errorf("warnings %q lack %q", warnings, want)
		}
	}
}

type warningFunc func(string)

func (f warningFunc) HandleWarningHeaderWithContext(_ context.Context, code int, _ string, msg string) {
	if code == 299 {
		f(msg)
	}
}

// The extra webhook adds a container after the injector has run, so the API server reinvokes the
// injector, which must leave the pod as it is.
const extraPath = "/add-container"

func registerExtraWebhook(mgr manager.Manager) error {
	mgr.GetWebhookServer().Register(extraPath, &crwebhook.Admission{Handler: admission.HandlerFunc(
		func(_ context.Context, req admission.Request) admission.Response {
			var p corev1.Pod
			if err := json.Unmarshal(req.Object.Raw, &p); err != nil {
				return admission.Errored(http.StatusBadRequest, err)
			}
			if p.Labels["test/extra"] == "" || slices.ContainsFunc(p.Spec.Containers, func(c corev1.Container) bool { return c.Name == "extra" }) {
				return admission.Allowed("")
			}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "extra", Image: "busybox"})
			out, _ := json.Marshal(&p)
			return admission.PatchResponseFromRaw(req.Object.Raw, out)
		})})
	return nil
}

func TestReinvocationStaysIdempotent(t *testing.T) {
	e := shared.Get(t)
	var ours admissionregistrationv1.MutatingWebhookConfiguration
	if err := e.Client.Get(t.Context(), client.ObjectKey{Name: "meshinit-injector"}, &ours); err != nil {
		t.Fatal(err)
	}
	extra := ours.DeepCopy()
	extra.ObjectMeta = metav1.ObjectMeta{Name: "zz-add-container"}
	extra.Webhooks = extra.Webhooks[:1]
	extra.Webhooks[0].Name = "add-container.test.meshinit.io"
	url := fmt.Sprintf("https://%s:%d%s", e.Webhook.LocalServingHost, e.Webhook.LocalServingPort, extraPath)
	extra.Webhooks[0].ClientConfig.URL = &url
	if err := e.Client.Create(t.Context(), extra); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Client.Delete(context.Background(), extra) })

	p := pod(namespace(t, enabled), map[string]string{"test/extra": "yes"}, nil)
	if err := e.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if got := names(p.Spec.Containers); !slices.Equal(got, []string{"app", "extra"}) {
		t.Errorf("containers %v, want the app and the extra webhook's", got)
	}
	if got := names(p.Spec.InitContainers); !slices.Equal(got, []string{inject.InitName, inject.SidecarName}) {
		t.Errorf("init containers %v after reinvocation, want each of ours once", got)
	}
}

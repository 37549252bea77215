package injection

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/webhook/inject"
)

// kumasPath serves a stand-in for Kuma's own injector: as Kuma's, it adds a kuma-sidecar to a pod
// that has none, marking the pod kuma.io/sidecar-injected: "true", and leaves alone one that has.
const (
	kumasPath  = "/kumas-injector"
	kumasImage = "kumas-injector"
)

func registerKumasInjector(mgr manager.Manager) error {
	mgr.GetWebhookServer().Register(kumasPath, &crwebhook.Admission{Handler: admission.HandlerFunc(
		func(_ context.Context, req admission.Request) admission.Response {
			var p corev1.Pod
			if err := json.Unmarshal(req.Object.Raw, &p); err != nil {
				return admission.Errored(http.StatusBadRequest, err)
			}
			named := func(c corev1.Container) bool { return c.Name == inject.SidecarName }
			if slices.ContainsFunc(p.Spec.Containers, named) || slices.ContainsFunc(p.Spec.InitContainers, named) {
				return admission.Allowed("already injected")
			}
			p.Spec.Containers = append([]corev1.Container{{Name: inject.SidecarName, Image: kumasImage}}, p.Spec.Containers...)
			if p.Annotations == nil {
				p.Annotations = map[string]string{}
			}
			p.Annotations[api.AnnotationSidecarInjected] = "true"
			out, _ := json.Marshal(&p)
			return admission.PatchResponseFromRaw(req.Object.Raw, out)
		})})
	return nil
}

// TestBesideKumasInjector: with Kuma's injector registered too, the webhook whose configuration's
// name comes first injects, and the other finds the pod injected, as README's migration says:
// meshinit's default name comes after Kuma's, and webhook.configurationName=00-meshinit-injector
// before it.
func TestBesideKumasInjector(t *testing.T) {
	e := shared.Get(t)
	var ours admissionregistrationv1.MutatingWebhookConfiguration
	if err := e.Client.Get(t.Context(), client.ObjectKey{Name: "meshinit-injector"}, &ours); err != nil {
		t.Fatal(err)
	}
	create := func(name string, from *admissionregistrationv1.MutatingWebhookConfiguration, path string) {
		c := from.DeepCopy()
		c.ObjectMeta = metav1.ObjectMeta{Name: name}
		if path != "" {
			url := fmt.Sprintf("https://%s:%d%s", e.Webhook.LocalServingHost, e.Webhook.LocalServingPort, path)
			for i := range c.Webhooks {
				c.Webhooks[i].Name = fmt.Sprintf("%d.kumas-injector.test.meshinit.io", i)
				c.Webhooks[i].ClientConfig.URL = &url
			}
		}
		if err := e.Client.Create(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Client.Delete(context.Background(), c) })
	}
	create("kuma-admission-mutating-webhook-configuration", &ours, kumasPath)
	ns := namespace(t, enabled)
	sidecarImage := func() string {
		p := pod(ns, nil, nil)
		if err := e.Client.Create(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		for _, c := range slices.Concat(p.Spec.InitContainers, p.Spec.Containers) {
			if c.Name == inject.SidecarName {
				return c.Image
			}
		}
		t.Fatalf("pod %s has no %s", p.Name, inject.SidecarName)
		return ""
	}
	if got := sidecarImage(); got != kumasImage {
		t.Errorf("with meshinit's default name, the sidecar is %q; want Kuma's injector's, called first", got)
	}

	// Renamed to come first: meshinit injects, and Kuma's injector finds the pod injected.
	create("00-meshinit-injector", &ours, "")
	if err := e.Client.Delete(t.Context(), &ours); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ours.ResourceVersion = ""
		if err := e.Client.Create(context.Background(), &ours); err != nil {
			t.Errorf("restoring meshinit's webhook: %v", err)
		}
	})
	if got := sidecarImage(); got != e.Config.Injector.SidecarContainer.Image {
		t.Errorf("with meshinit's webhook first, the sidecar is %q; want meshinit's %q", got, e.Config.Injector.SidecarContainer.Image)
	}
}

// Package cluster runs the injector binary the way a cluster runs it, on this machine: a real
// control plane (etcd and kube-apiserver from bin/, through kubeenv), the injector started with
// its KUMA_RUNTIME_* settings and serving a fresh certificate on 127.0.0.1, and the webhook
// registered by the chart's own MutatingWebhookConfiguration, pointed at the injector by the
// chart's webhook.url (an injector outside the cluster). Everything is stopped and removed when
// the test ends.
package cluster

import (
	"context"
	"encoding/base64"
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/loader"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/kubeenv"
)

const (
	// SystemNamespace is the injector's, as the chart installs it by default.
	SystemNamespace = "kuma-system"
	// NoDrain is the flag for injectors that are stopped when the test ends, when nothing calls
	// them any more: their stop need not wait for connections to move elsewhere.
	NoDrain = "--shutdown-drain=0s"
)

// Cluster is a running control plane, with the injector's namespace and a serving certificate.
type Cluster struct {
	*kubeenv.Env
	Kubeconfig string
	// Certs holds a CA (LocalServingCAData) and a certificate for 127.0.0.1 that it signed, in
	// LocalServingCertDir, as the injector reads them; LocalServingPort is free for an injector.
	Certs *envtest.WebhookInstallOptions
}

// New starts a control plane, changed by options as kubeenv.Start's, and makes the serving
// certificate.
func New(ctx context.Context, t testing.TB, options ...func(*envtest.Environment)) *Cluster {
	t.Helper()
	c := &Cluster{Env: kubeenv.Start(t, options...)}
	c.Kubeconfig = c.WriteKubeconfig(t)
	c.Certs = &envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}
	if err := c.Certs.PrepWithoutInstalling(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Certs.Cleanup() })
	if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}); err != nil {
		t.Fatal(err)
	}
	return c
}

// Start is the usual installation: a control plane, one injector (the binary at injector, with
// the extra environment env) on the certificate's port, and the webhook registered to call it.
func Start(ctx context.Context, t testing.TB, injector string, env []string) (*Cluster, *Injector) {
	t.Helper()
	c := New(ctx, t)
	inj := c.RunInjector(ctx, t, injector, InjectorOptions{Env: env, Port: c.Certs.LocalServingPort, Args: []string{NoDrain}})
	c.Register(ctx, t, inj.URL, nil)
	return c, inj
}

// Register applies the chart's objects for an injector outside the cluster at url (without the
// path), trusting the cluster's CA; values override the chart's values, webhook.failurePolicy or
// tls.caBundle say. Registering again updates the webhook configuration in place.
func (c *Cluster) Register(ctx context.Context, t testing.TB, url string, values map[string]any) {
	t.Helper()
	values = loader.MergeMaps(map[string]any{
		"webhook": map[string]any{"url": url},
		"tls":     map[string]any{"mode": "secret", "caBundle": base64.StdEncoding.EncodeToString(c.Certs.LocalServingCAData)},
	}, values)
	manifest, err := charts.Render(ctx, charts.Release{Name: "meshinit", Namespace: SystemNamespace, KubeVersion: kubeenv.KubeVersion, Values: values})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := charts.Objects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		if err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("meshinit-test"), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}

package kubeenv_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// TestNamespaceRoundTrip proves the control plane is real: a Namespace written through
// kube-apiserver is stored in etcd and read back with its label.
func TestNamespaceRoundTrip(t *testing.T) {
	env := kubeenv.Start(t)
	ctx := t.Context()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "meshed",
		Labels: map[string]string{api.LabelSidecarInjection: "enabled"},
	}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	var got corev1.Namespace
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "meshed"}, &got); err != nil {
		t.Fatalf("get namespace: %v", err)
	}
	if got.UID == "" || got.ResourceVersion == "" {
		t.Errorf("namespace read back without server-set fields: uid=%q resourceVersion=%q", got.UID, got.ResourceVersion)
	}
	if v := got.Labels[api.LabelSidecarInjection]; v != "enabled" {
		t.Errorf("label %s = %q, want enabled", api.LabelSidecarInjection, v)
	}
	version, err := env.Client.RESTMapper().RESTMapping(corev1.SchemeGroupVersion.WithKind("Namespace").GroupKind())
	if err != nil || version.Resource.Resource != "namespaces" {
		t.Errorf("discovery of namespaces: %v %v", version, err)
	}
}

package chart

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/test/chartcases"
)

// install renders a case as the release `name` in namespace `name`, creates the namespace and
// applies every object with server-side apply, as `kubectl apply --server-side` would.
func install(ctx context.Context, t *testing.T, c chartcases.Case, name string) []*unstructured.Unstructured {
	t.Helper()
	e := shared.Get(t)
	values, err := c.Values()
	if err != nil {
		t.Fatal(err)
	}
	_, objs := chartcases.Render(t, name, name, values)
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: objectMeta(name)}); err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		if err := e.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("meshinit-test"), client.ForceOwnership); err != nil {
			t.Errorf("%s: applying %s %s/%s: %v", c.Name, obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
	}
	return objs
}

// TestEveryCaseApplies: the API server accepts every object of every installation: the defaults,
// each way of getting certificates, and each CNI provider.
func TestEveryCaseApplies(t *testing.T) {
	e := shared.Get(t)
	for _, c := range chartcases.Cases {
		t.Run(c.Name, func(t *testing.T) {
			for _, obj := range install(t.Context(), t, c, c.Name) {
				// Read back: the object is stored as applied, under its name.
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(obj.GroupVersionKind())
				if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(obj), got); err != nil {
					t.Errorf("%s %s: %v", obj.GetKind(), obj.GetName(), err)
				}
			}
		})
	}
}

func objectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

package taint

import (
	"context"
	"testing"

	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshinit/meshinit/config"
)

// TestReconcileKeepsConcurrentTaints has someone else taint the node between the reconciler's read
// and its patch: the optimistic lock must make the patch fail rather than drop their taint, and the
// reconcile must be retried, which then keeps both taints.
func TestReconcileKeepsConcurrentTaints(t *testing.T) {
	ctx := log.IntoContext(t.Context(), testr.New(t))
	theirs := corev1.Taint{Key: "example.com/maintenance", Effect: corev1.TaintEffectNoSchedule}
	interfere := true
	c := fake.NewClientBuilder().
		WithObjects(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}).
		WithInterceptorFuncs(interceptor.Funcs{
			Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
				if err := c.Get(ctx, key, obj, opts...); err != nil {
					return err
				}
				if node, ok := obj.(*corev1.Node); ok && interfere {
					interfere = false
					other := node.DeepCopy()
					other.Spec.Taints = append(other.Spec.Taints, theirs)
					return c.Update(ctx, other)
				}
				return nil
			},
		}).Build()
	r := &reconciler{client: c, cfg: config.NodeTaintController{Enabled: true, CNIApp: "kuma-cni", CNINamespace: "kube-system"}}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Name: "n1"}}

	res, err := r.Reconcile(ctx, req)
	if err != nil || res.RequeueAfter <= 0 {
		t.Fatalf("first reconcile = %+v, %v; want a requeue after the conflict and no error", res, err)
	}
	if res, err := r.Reconcile(ctx, req); err != nil || res != (reconcile.Result{}) {
		t.Fatalf("retry = %+v, %v; want done", res, err)
	}
	var node corev1.Node
	if err := c.Get(ctx, req.NamespacedName, &node); err != nil {
		t.Fatal(err)
	}
	want := []corev1.Taint{theirs, {Key: r.cfg.Key(), Effect: Effect}}
	if diff := cmp.Diff(want, node.Spec.Taints); diff != "" {
		t.Errorf("taints (-want +got):\n%s", diff)
	}
}

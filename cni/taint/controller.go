package taint

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/meshinit/meshinit/config"
)

// name is the controller's name, in its logs and metrics.
const name = "node-taint"

// conflictRetry is how long a reconcile waits after losing an optimistic-lock race: long enough for
// the cache to see the write that won, so the retry starts from it.
const conflictRetry = 200 * time.Millisecond

// Setup registers the controller with mgr, reconciling each Node on changes to its taints and to
// the CNI pods bound to it. It does nothing when cfg is not enabled.
func Setup(mgr manager.Manager, cfg config.NodeTaintController) error {
	if !cfg.Enabled {
		return nil
	}
	isCNIPod := func(obj client.Object) bool {
		return obj.GetNamespace() == cfg.CNINamespace && obj.GetLabels()[appLabel] == cfg.CNIApp
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(&corev1.Node{}, builder.WithPredicates(predicate.Funcs{
			// Only the taints and labels matter (labels say whether the CNI DaemonSet covers the
			// node): status heartbeats would be wasted reconciles.
			UpdateFunc: func(e event.UpdateEvent) bool {
				old, cur := e.ObjectOld.(*corev1.Node), e.ObjectNew.(*corev1.Node)
				return !equality.Semantic.DeepEqual(old.Spec.Taints, cur.Spec.Taints) || !equality.Semantic.DeepEqual(old.Labels, cur.Labels)
			},
			DeleteFunc: func(event.DeleteEvent) bool { return false },
		})).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podNode), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(e event.CreateEvent) bool { return isCNIPod(e.Object) },
			// Either side: a pod that loses the label stops counting for its node.
			UpdateFunc:  func(e event.UpdateEvent) bool { return isCNIPod(e.ObjectOld) || isCNIPod(e.ObjectNew) },
			DeleteFunc:  func(e event.DeleteEvent) bool { return isCNIPod(e.Object) },
			GenericFunc: func(e event.GenericEvent) bool { return isCNIPod(e.Object) },
		})).
		Complete(&reconciler{client: mgr.GetClient(), cfg: cfg})
}

// podNode maps a pod to the node it is bound to; an unscheduled pod concerns no node.
func podNode(_ context.Context, obj client.Object) []reconcile.Request {
	pod, ok := obj.(*corev1.Pod)
	if !ok || pod.Spec.NodeName == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: pod.Spec.NodeName}}}
}

// reconciler sets one node's taints from its CNI pods.
type reconciler struct {
	client client.Client
	cfg    config.NodeTaintController
}

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var node corev1.Node
	if err := r.client.Get(ctx, req.NamespacedName, &node); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(r.cfg.CNINamespace), client.MatchingLabels{appLabel: r.cfg.CNIApp}); err != nil {
		return reconcile.Result{}, err
	}
	covered := r.cfg.Nodes == nil || r.cfg.Nodes.Matches(labels.Set(node.Labels))
	d := decide(r.cfg.Key(), node.Name, covered, node.Spec.Taints, pods.Items)
	if d.change == unchanged {
		return reconcile.Result{}, nil
	}
	// A merge patch replaces the whole list, so the resourceVersion it carries makes the API server
	// refuse it if someone else changed the node since our read, rather than lose their taints.
	patch := client.MergeFromWithOptions(node.DeepCopy(), client.MergeFromWithOptimisticLock{})
	node.Spec.Taints = d.taints
	logger := log.FromContext(ctx).WithValues("node", node.Name, "taint", r.cfg.Key()+":"+string(Effect), "reason", d.reason)
	if err := r.client.Patch(ctx, &node, patch); err != nil {
		if apierrors.IsConflict(err) {
			logger.V(1).Info("node changed meanwhile; retrying")
			return reconcile.Result{RequeueAfter: conflictRetry}, nil
		}
		return reconcile.Result{}, err
	}
	if d.change == added {
		logger.Info("taint added")
	} else {
		logger.Info("taint removed")
	}
	return reconcile.Result{}, nil
}

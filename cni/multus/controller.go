package multus

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

	"github.com/meshinit/meshinit/api"
)

// name is the controller's name, in its logs and metrics.
const name = "network-attachment-definition"

// Setup registers the controller with mgr, reconciling each labelled Namespace when it changes
// and when its kuma-cni definition is deleted. It does nothing unless enabled (see Enabled).
func Setup(mgr manager.Manager, enabled bool) error {
	if !enabled {
		return nil
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(name).
		For(&corev1.Namespace{}, builder.WithPredicates(predicate.NewPredicateFuncs(labelled))).
		Watches(definitionMetadata(), handler.EnqueueRequestsFromMapFunc(definitionNamespace), builder.WithPredicates(predicate.Funcs{
			// Only a deletion calls for anything: the definition is created again.
			CreateFunc:  func(event.CreateEvent) bool { return false },
			UpdateFunc:  func(event.UpdateEvent) bool { return false },
			DeleteFunc:  func(e event.DeleteEvent) bool { return e.Object.GetName() == NetworkName },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		Complete(&reconciler{client: mgr.GetClient()})
}

// labelled reports whether a namespace carries kuma.io/sidecar-injection, whatever its value.
func labelled(ns client.Object) bool {
	_, ok := ns.GetLabels()[api.LabelSidecarInjection]
	return ok
}

// definitionNamespace maps a definition to its namespace.
func definitionNamespace(_ context.Context, obj client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.GetNamespace()}}}
}

// reconciler creates a labelled namespace's definition when it has none.
type reconciler struct {
	client client.Client
}

func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	var ns corev1.Namespace
	if err := r.client.Get(ctx, req.NamespacedName, &ns); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if !labelled(&ns) || ns.DeletionTimestamp != nil {
		return reconcile.Result{}, nil
	}
	// Whoever's it is, a definition already there is left as it is: an operator's own wins.
	err := r.client.Get(ctx, client.ObjectKey{Namespace: ns.Name, Name: NetworkName}, definitionMetadata())
	if !apierrors.IsNotFound(err) {
		return reconcile.Result{}, err
	}
	err = r.client.Create(ctx, definition(ns.Name))
	switch {
	case apierrors.IsAlreadyExists(err):
		// Created since the cache last saw the namespace: by this controller or by someone else.
		return reconcile.Result{}, nil
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return reconcile.Result{}, nil
	case err != nil:
		return reconcile.Result{}, err
	}
	log.FromContext(ctx).Info("created the NetworkAttachmentDefinition", "definition", ns.Name+"/"+NetworkName)
	return reconcile.Result{}, nil
}

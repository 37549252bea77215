package taint

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/config"
)

// appLabel is the label whose value, NodeTaintController.CNIApp, marks the CNI DaemonSet's pods.
const appLabel = "app"

// CacheOptions restricts the manager's pod cache to the CNI pods, for the manager's options
// (ctrl.Options.Cache). Without it the cache lists and watches every pod of the cluster, which is
// correct (Setup filters with predicates) but holds every pod in memory and needs cluster-wide
// pod rights.
// Only use it when nothing else in the manager reads pods from the cache: they would not be there.
// When the controller is disabled it restricts nothing.
func CacheOptions(cfg config.NodeTaintController) cache.Options {
	if !cfg.Enabled {
		return cache.Options{}
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}: {
			Namespaces: map[string]cache.Config{cfg.CNINamespace: {}},
			Label:      labels.SelectorFromSet(labels.Set{appLabel: cfg.CNIApp}),
		},
	}}
}

package multus

import (
	"fmt"
	"slices"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/meshinit/meshinit/config"
)

// Enabled reports whether the controller is to run: in CNI mode, where the API server serves
// Multus's NetworkAttachmentDefinitions. It asks discovery, so it is called once, at start, before
// the manager is made: CacheOptions needs the answer, since no manager can be made with cache
// options for a kind the API server does not serve. It logs why it is off when Multus's CRD is
// what is missing.
func Enabled(restConfig *rest.Config, cfg config.Injector, log logr.Logger) (bool, error) {
	if !cfg.CNIEnabled {
		return false, nil
	}
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return false, err
	}
	gv := definitionKind.GroupVersion().String()
	list, err := dc.ServerResourcesForGroupVersion(gv)
	if err != nil && !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("asking the API server whether it serves %s %s: %w", gv, definitionResource, err)
	}
	if err == nil && slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool {
		return r.Name == definitionResource && r.Namespaced
	}) {
		log.Info("keeping a NetworkAttachmentDefinition in every namespace labelled kuma.io/sidecar-injection", "name", NetworkName)
		return true, nil
	}
	log.Info("NetworkAttachmentDefinitions will not be created: Multus's CRD is not installed " +
		"(the API server does not serve " + gv + " " + definitionResource + "); restart the injector after installing it")
	return false, nil
}

package multus

import (
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheOptions restricts the manager's cache of NetworkAttachmentDefinitions to those named
// kuma-cni, their metadata only, for the manager's options (ctrl.Options.Cache): the controller
// reads and watches nothing else of them, and a cluster may hold many. It restricts nothing when
// the controller is not enabled (see Enabled): the cache would fail on a kind not served.
func CacheOptions(enabled bool) cache.Options {
	if !enabled {
		return cache.Options{}
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		definitionMetadata(): {Field: fields.OneTermEqualSelector("metadata.name", NetworkName)},
	}}
}

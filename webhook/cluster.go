package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/webhook/inject"
)

// clusterReadTimeout bounds each read of the API server during an admission, well within the
// webhook's timeoutSeconds.
const clusterReadTimeout = 3 * time.Second

// containerPatchKind is Kuma's ContainerPatch.
var containerPatchKind = schema.GroupVersionKind{Group: api.ContainerPatchGroup, Version: api.ContainerPatchVersion, Kind: api.ContainerPatchKind}

// apiCluster reads Kuma's ConfigMaps and ContainerPatch objects from the API server: the cluster's
// ConfigMap, which every injection reads, from the manager's cache, which watches that one alone;
// a pod's own ConfigMap and the ContainerPatch objects with a read of their own, since few pods
// name them.
type apiCluster struct {
	cached, live client.Reader
	// clusterConfigMap is the cluster's ConfigMap, the one the cache holds.
	clusterConfigMap client.ObjectKey
}

var _ inject.Cluster = (*apiCluster)(nil)

func (c *apiCluster) ConfigMap(namespace, name string) (map[string]string, error) {
	key := client.ObjectKey{Namespace: namespace, Name: name}
	reader := c.live
	if key == c.clusterConfigMap {
		reader = c.cached
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadTimeout)
	defer cancel()
	cm := &corev1.ConfigMap{}
	switch err := reader.Get(ctx, key, cm); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	if cm.Data == nil {
		return map[string]string{}, nil
	}
	return cm.Data, nil
}

func (c *apiCluster) ContainerPatch(namespace, name string) (*api.ContainerPatchSpec, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterReadTimeout)
	defer cancel()
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(containerPatchKind)
	switch err := c.live.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); {
	case meta.IsNoMatchError(err):
		return nil, inject.ErrNoContainerPatches
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	}
	// Read as Kuma reads its own objects: the fields it knows, others ignored.
	data, err := json.Marshal(obj.Object["spec"])
	if err != nil {
		return nil, err
	}
	spec := &api.ContainerPatchSpec{}
	if err := json.Unmarshal(data, spec); err != nil {
		return nil, fmt.Errorf("ContainerPatch %s/%s has a spec of the wrong form: %w", namespace, name, err)
	}
	return spec, nil
}

// configMapCacheOptions restricts the cache's ConfigMaps to the cluster's transparent-proxy
// ConfigMap: watching every ConfigMap of the cluster would cost the injector memory for nothing.
func configMapCacheOptions(cfg *config.Config) cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {
			Namespaces: map[string]cache.Config{cfg.SystemNamespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", cfg.Injector.TransparentProxyConfigMap),
		},
	}}
}

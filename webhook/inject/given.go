package inject

import (
	"cmp"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshinit/meshinit/api"
)

// givenCluster is the part of a cluster that documents given with the manifests stand for, for
// `meshinit inject`: Namespaces' labels, ConfigMaps and ContainerPatch objects, by namespace and
// name. They are written out unchanged.
type givenCluster struct {
	namespaces map[string]map[string]string
	configMaps map[string]map[string]string
	patches    map[string]*api.ContainerPatchSpec
	// broken are the objects that do not decode, by namespace and name: an error only for the
	// injection that reads one, since other documents pass through as they are.
	broken map[string]error
}

var _ Cluster = (*givenCluster)(nil)

func (g *givenCluster) ConfigMap(namespace, name string) (map[string]string, error) {
	return g.configMaps[namespace+"/"+name], g.broken["ConfigMap "+namespace+"/"+name]
}

func (g *givenCluster) ContainerPatch(namespace, name string) (*api.ContainerPatchSpec, error) {
	return g.patches[namespace+"/"+name], g.broken["ContainerPatch "+namespace+"/"+name]
}

// gatherCluster reads the Namespaces, ConfigMaps and ContainerPatch objects among the documents,
// and those of v1 Lists; objects without a namespace are in namespace.
func gatherCluster(docs [][]byte, namespace string) (*givenCluster, error) {
	g := &givenCluster{namespaces: map[string]map[string]string{}, configMaps: map[string]map[string]string{},
		patches: map[string]*api.ContainerPatchSpec{}, broken: map[string]error{}}
	var gather func(data []byte, where string) error
	gather = func(data []byte, where string) error {
		var typ metav1.TypeMeta
		if json.Unmarshal(data, &typ) != nil {
			return nil // not an object: the injection pass says what is wrong with it
		}
		var err error
		switch {
		case typ.APIVersion == "v1" && typ.Kind == "List":
			var list metav1.List
			if err = json.Unmarshal(data, &list); err == nil {
				for i, item := range list.Items {
					if err = gather(item.Raw, fmt.Sprintf("%s item %d", where, i+1)); err != nil {
						return err
					}
				}
			}
		case typ.APIVersion == "v1" && typ.Kind == "Namespace":
			var ns corev1.Namespace
			if err = json.Unmarshal(data, &ns); err == nil {
				g.namespaces[ns.Name] = ns.Labels
			}
		case typ.APIVersion == "v1" && typ.Kind == "ConfigMap":
			key, ok := objectKey(data, namespace)
			var cm corev1.ConfigMap
			if ok {
				if err := json.Unmarshal(data, &cm); err != nil {
					g.broken["ConfigMap "+key] = fmt.Errorf("%s (ConfigMap %s): %w", where, key, err)
				}
				g.configMaps[key] = cm.Data
			}
		case typ.APIVersion == api.ContainerPatchGroup+"/"+api.ContainerPatchVersion && typ.Kind == api.ContainerPatchKind:
			key, ok := objectKey(data, namespace)
			var patch struct {
				Spec api.ContainerPatchSpec `json:"spec"`
			}
			if ok {
				if err := json.Unmarshal(data, &patch); err != nil {
					g.broken["ContainerPatch "+key] = fmt.Errorf("%s (ContainerPatch %s): %w", where, key, err)
				}
				g.patches[key] = &patch.Spec
			}
		}
		if err != nil {
			return fmt.Errorf("%s (%s): %w", where, typ.Kind, err)
		}
		return nil
	}
	for i, doc := range docs {
		if err := gather(doc, fmt.Sprintf("document %d", i+1)); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// objectKey is an object's namespace and name, its namespace defaulting to namespace.
func objectKey(data []byte, namespace string) (string, bool) {
	var obj struct {
		metav1.ObjectMeta `json:"metadata"`
	}
	if json.Unmarshal(data, &obj) != nil {
		return "", false
	}
	return cmp.Or(obj.Namespace, namespace) + "/" + obj.Name, true
}

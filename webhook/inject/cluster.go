package inject

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
)

// Cluster is what injection reads of the cluster besides the pod and its namespace's labels:
// Kuma's ConfigMaps of transparent-proxy settings and its ContainerPatch objects. The webhook
// reads them from the API server; `meshinit inject`, from the documents given with the
// manifests. Both answer nil, nil for an object that does not exist.
type Cluster interface {
	ConfigMap(namespace, name string) (map[string]string, error)
	ContainerPatch(namespace, name string) (*api.ContainerPatchSpec, error)
}

// ErrNoContainerPatches is what a Cluster answers where ContainerPatch objects cannot exist: Kuma's
// CRD is not installed.
var ErrNoContainerPatches = errors.New("the ContainerPatch kind (kuma.io/v1alpha1) is not installed in this cluster")

// layer is one ConfigMap read over the configuration: where it is, for messages and logs.
type layer struct {
	namespace, name string
	// required refuses the pod when the ConfigMap is not there: a pod's own, which it names.
	required bool
}

func (l layer) String() string { return "ConfigMap " + l.namespace + "/" + l.name }

// readLayers reads the cluster's ConfigMap, then the pod's, over tp, each as Kuma's loader reads
// a document over the previous ones. It returns the configuration, where each field it gave came
// from, and the documents' warnings.
func (r *resolver) readLayers(tp *api.TransparentProxyConfig, layers []layer) (*api.TransparentProxyConfig, error) {
	for _, l := range layers {
		data, err := r.cluster.ConfigMap(l.namespace, l.name)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", l, err)
		}
		if data == nil {
			if l.required {
				r.errs.Add(api.AnnotationTransparentProxyConfigMap, &api.FieldError{Value: l.name,
					Problem:  "names no ConfigMap of namespace " + l.namespace,
					Accepted: "the name of a ConfigMap of the pod's namespace with a " + api.ConfigMapKey + " key"})
			}
			continue
		}
		text, ok := data[api.ConfigMapKey]
		if !ok {
			r.errs.Add(l.String(), &api.FieldError{Problem: "has no key " + api.ConfigMapKey,
				Accepted: "a " + api.ConfigMapKey + " key holding a " + api.ConfigKind + " document"})
			continue
		}
		doc, err := api.ReadTransparentProxyConfig([]byte(text), tp)
		if errs, ok := err.(api.FieldErrors); ok {
			errs.Rename(func(field string) string { return l.String() + " " + api.ConfigMapKey + ": " + field })
		}
		if r.errs.Add(l.String(), err) {
			continue
		}
		tp = doc.Config
		for _, path := range doc.Given {
			r.givenBy[path] = Source(l.String())
		}
		for _, w := range doc.Warnings {
			r.warnings = append(r.warnings, l.String()+" "+api.ConfigMapKey+": "+w)
		}
	}
	return tp, nil
}

// patches are the ContainerPatch operations a pod gets: the cluster's patches', then its own,
// each list in the order named. A name that the control plane's namespace does not have refuses
// the pod, naming the setting or annotation that named it.
func (in *Injector) patches(r *resolver, own []string) (sidecar, init []api.JSONPatchOperation, err error) {
	ns := in.Config.SystemNamespace
	for _, named := range []struct {
		field string
		names []string
	}{{settings.ContainerPatches.Env, in.Config.Injector.ContainerPatches}, {api.AnnotationContainerPatches, own}} {
		var missing []string
		problem := "names ContainerPatch objects that namespace " + ns + " does not have"
		for _, name := range named.names {
			spec, err := r.cluster.ContainerPatch(ns, name)
			switch {
			case errors.Is(err, ErrNoContainerPatches):
				missing, problem = append(missing, name), "names ContainerPatch objects, but "+err.Error()
			case err != nil:
				return nil, nil, fmt.Errorf("reading ContainerPatch %s/%s: %w", ns, name, err)
			case spec == nil:
				missing = append(missing, name)
			default:
				sidecar = append(sidecar, spec.SidecarPatch...)
				init = append(init, spec.InitPatch...)
			}
		}
		if len(missing) > 0 {
			r.errs.Add(named.field, &api.FieldError{Value: strings.Join(missing, ","), Problem: problem,
				Accepted: "names of ContainerPatch objects (kuma.io/v1alpha1) of namespace " + ns})
		}
	}
	return sidecar, init, nil
}

// cluster is the injector's Cluster, or an empty one.
func (in *Injector) cluster() Cluster {
	if in.Cluster == nil {
		return emptyCluster{}
	}
	return in.Cluster
}

type emptyCluster struct{}

func (emptyCluster) ConfigMap(string, string) (map[string]string, error) { return nil, nil }
func (emptyCluster) ContainerPatch(string, string) (*api.ContainerPatchSpec, error) {
	return nil, nil
}

// patchContainers applies the pod's ContainerPatch operations to the sidecar and to the init
// container (kuma-init, or the validation container), before they are placed in the pod. A patch
// that does not apply, or renames a container, refuses the pod: its author asked for something
// injection cannot do.
func patchContainers(a *added, res *resolved) error {
	var errs api.FieldErrors
	for _, p := range []struct {
		field string
		ops   []api.JSONPatchOperation
		c     *corev1.Container
	}{{"sidecarPatch", res.sidecarPatch, &a.sidecar}, {"initPatch", res.initPatch, a.init}} {
		if len(p.ops) == 0 || p.c == nil {
			continue // a gateway in CNI mode has no init container to patch
		}
		errs.Add(api.AnnotationContainerPatches+" ("+p.field+")", patchContainer(p.c, p.field, p.ops))
	}
	if err := errs.Err(); err != nil {
		return &Denial{Reason: ReasonInvalidAnnotation, Message: err.Error()}
	}
	return nil
}

func patchContainer(c *corev1.Container, field string, ops []api.JSONPatchOperation) error {
	doc, err := api.JSONPatch(field, ops)
	if err != nil {
		return err
	}
	patch, err := jsonpatch.DecodePatch(doc)
	if err != nil {
		return err
	}
	original, err := json.Marshal(c)
	if err != nil {
		return err
	}
	patched, err := patch.ApplyWithOptions(original, &jsonpatch.ApplyOptions{EnsurePathExistsOnAdd: true})
	if err != nil {
		return &api.FieldError{Problem: "does not apply to container " + c.Name + ": " + err.Error(),
			Accepted: "JSON patch operations whose paths exist in the container, or that add them"}
	}
	var out corev1.Container
	dec := json.NewDecoder(bytes.NewReader(patched))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return &api.FieldError{Problem: "makes container " + c.Name + " invalid: " + err.Error(),
			Accepted: "operations that leave a valid container"}
	}
	if out.Name != c.Name {
		return &api.FieldError{Value: out.Name, Problem: "renames container " + c.Name,
			Accepted: "operations that keep the container's name, by which injection knows it"}
	}
	*c = out
	return nil
}

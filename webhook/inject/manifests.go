package inject

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// ManifestOptions say what offline injection cannot ask an API server. What the input itself
// holds answers first: the labels of its Namespaces, and its ConfigMaps and ContainerPatch
// objects (see gatherCluster).
type ManifestOptions struct {
	// Namespace is used for documents without metadata.namespace.
	Namespace string
	// NamespaceLabels stand for the labels of a namespace the input holds no Namespace of; offline
	// there is no API server to ask. The CLI passes kuma.io/sidecar-injection: enabled unless told
	// otherwise, so that injection is what the user asked for unless a pod's own label disables it.
	NamespaceLabels map[string]string
}

// podKinds are the kinds whose pod is injected: the one apiVersion of each that is, and a new
// empty object of the kind.
var podKinds = map[string]struct {
	apiVersion string
	new        func() workload
}{
	"Pod":         {"v1", func() workload { o := &corev1.Pod{}; return workload{o, &o.ObjectMeta, &o.Spec} }},
	"Deployment":  {"apps/v1", func() workload { o := &appsv1.Deployment{}; return template(o, &o.Spec.Template) }},
	"StatefulSet": {"apps/v1", func() workload { o := &appsv1.StatefulSet{}; return template(o, &o.Spec.Template) }},
	"DaemonSet":   {"apps/v1", func() workload { o := &appsv1.DaemonSet{}; return template(o, &o.Spec.Template) }},
	"ReplicaSet":  {"apps/v1", func() workload { o := &appsv1.ReplicaSet{}; return template(o, &o.Spec.Template) }},
	"Job":         {"batch/v1", func() workload { o := &batchv1.Job{}; return template(o, &o.Spec.Template) }},
	"CronJob":     {"batch/v1", func() workload { o := &batchv1.CronJob{}; return template(o, &o.Spec.JobTemplate.Spec.Template) }},
}

// InjectManifests reads Kubernetes manifests from r, YAML documents separated by `---` or a
// stream of JSON objects, and writes them to w with the pod of every Pod, Deployment,
// StatefulSet, DaemonSet, ReplicaSet, Job and CronJob injected by in as the webhook would inject
// it, and the items of v1 Lists handled alike. The warnings name their documents.
//
// Documents that are not injected (other kinds, pods not selected, comment-only documents) are
// written as they were; injected ones are re-encoded from their typed objects, in the input's
// format. What the YAML splitter normalizes is not kept: line ends become \n (with one at the
// end), a comment on a separator line and a final separator are dropped. Empty documents are kept:
// a separator that ends no document stays at the start of the next one.
//
// Nothing is written if any document is malformed or denied, so that a pipe into `kubectl apply`
// never applies half of the input. The error names the document; for a denial it wraps the
// *Denial, whose message is the webhook's.
func InjectManifests(r io.Reader, w io.Writer, in *Injector, opts ManifestOptions) ([]string, error) {
	docs, isJSON, err := splitDocuments(r)
	if err != nil {
		return nil, err
	}
	jsonDocs := make([][]byte, len(docs))
	for i, doc := range docs {
		jsonDocs[i] = doc
		if !isJSON {
			if jsonDocs[i], err = yaml.YAMLToJSON(doc); err != nil {
				return nil, fmt.Errorf("document %d: %w", i+1, err)
			}
		}
	}
	given, err := gatherCluster(jsonDocs, opts.Namespace)
	if err != nil {
		return nil, err
	}
	if in.Cluster == nil {
		withDocs := *in
		withDocs.Cluster = given
		in = &withDocs
	}
	m := &manifests{in: in, opts: opts, namespaces: given.namespaces}
	var out bytes.Buffer
	for i, doc := range docs {
		where := fmt.Sprintf("document %d", i+1)
		obj, err := m.object(jsonDocs[i], where)
		if err != nil {
			return nil, err
		}
		if obj != nil {
			if doc, err = encode(obj, isJSON); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
		if isJSON {
			out.Write(doc)
			out.WriteByte('\n')
			continue
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(doc)
	}
	if _, err := w.Write(out.Bytes()); err != nil {
		return nil, err
	}
	return m.warnings, nil
}

// splitDocuments returns the input's documents as they were written, and whether they are JSON,
// sniffed as kubectl does: from the first non-blank character being '{'.
func splitDocuments(r io.Reader) (docs [][]byte, isJSON bool, err error) {
	stream, _, isJSON := utilyaml.GuessJSONStream(r, 4096)
	if isJSON {
		dec := json.NewDecoder(stream)
		for {
			var doc json.RawMessage
			switch err := dec.Decode(&doc); {
			case errors.Is(err, io.EOF):
				return docs, true, nil
			case err != nil:
				return nil, true, fmt.Errorf("document %d: %w", len(docs)+1, err)
			}
			docs = append(docs, doc)
		}
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(stream))
	for {
		doc, err := reader.Read()
		switch {
		case errors.Is(err, io.EOF):
			return docs, false, nil
		case err != nil:
			return nil, false, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		docs = append(docs, doc)
	}
}

// encode writes an injected object in the input's format.
func encode(obj any, asJSON bool) ([]byte, error) {
	if asJSON {
		return json.MarshalIndent(obj, "", "  ")
	}
	return yaml.Marshal(obj)
}

// manifests injects the objects of one input, collecting the warnings.
type manifests struct {
	in   *Injector
	opts ManifestOptions
	// namespaces are the labels of the Namespaces the input holds, by name.
	namespaces map[string]map[string]string
	warnings   []string
}

// object injects one object, given as JSON, and returns what to write instead of it, or nil when
// it is written as it was. where names it in errors.
func (m *manifests) object(data []byte, where string) (any, error) {
	if bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil, nil // a document of comments only
	}
	var typ metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, &typ); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if typ.APIVersion == "" || typ.Kind == "" {
		return nil, fmt.Errorf("%s: apiVersion and kind are required", where)
	}
	where += " (" + typ.Kind + ")"
	if typ.Kind == "List" && typ.APIVersion == "v1" {
		return m.list(data, where)
	}
	kind, ok := podKinds[typ.Kind]
	if !ok {
		return nil, nil
	}
	if typ.APIVersion != kind.apiVersion {
		// Most likely a retired version the cluster no longer serves, which the user should hear of.
		m.warnings = append(m.warnings, fmt.Sprintf("%s: %s %s is passed through not injected: only %s %s is",
			where, typ.APIVersion, typ.Kind, kind.apiVersion, typ.Kind))
		return nil, nil
	}
	return m.workload(typ.Kind, kind.new(), data, where)
}

// list injects the items of a v1 List; the List is rewritten as a whole if one of them is.
func (m *manifests) list(data []byte, where string) (any, error) {
	var list metav1.List
	lost, err := decode(data, &list)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	changed := false
	for i, item := range list.Items {
		obj, err := m.object(item.Raw, fmt.Sprintf("%s item %d", where, i+1))
		if err != nil {
			return nil, err
		}
		if obj == nil {
			continue
		}
		if list.Items[i].Raw, err = json.Marshal(obj); err != nil {
			return nil, err
		}
		changed = true
	}
	if !changed {
		return nil, nil
	}
	if lost != nil {
		return nil, fmt.Errorf("%s: %w: rewriting it would lose that", where, lost)
	}
	return &list, nil
}

// workload injects the pod of one of podKinds.
func (m *manifests) workload(kind string, w workload, data []byte, where string) (any, error) {
	lost, err := decode(data, w.obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	namespace := cmp.Or(w.obj.GetNamespace(), m.opts.Namespace)
	name := fmt.Sprintf("%s %s/%s", kind, namespace, cmp.Or(w.obj.GetName(), w.obj.GetGenerateName()+"*"))
	pod := &corev1.Pod{ObjectMeta: *w.meta, Spec: *w.spec}
	pod.Namespace = namespace
	nsLabels, ok := m.namespaces[namespace]
	if !ok {
		nsLabels = m.opts.NamespaceLabels
	}
	res, err := m.in.Inject(pod, namespace, nsLabels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for _, warning := range res.Warnings {
		m.warnings = append(m.warnings, name+": "+warning)
	}
	if !res.Injected {
		return nil, nil
	}
	if lost != nil {
		return nil, fmt.Errorf("%s: %w: rewriting it would lose that", where, lost)
	}
	// Only labels and annotations: a template has no namespace of its own.
	w.meta.Labels, w.meta.Annotations, *w.spec = res.Pod.Labels, res.Pod.Annotations, res.Pod.Spec
	return w.obj, nil
}

// decode reads data into obj. lost is what obj cannot hold (unknown or duplicate fields), which
// matters only if obj is re-encoded: documents written as they were keep all of theirs.
func decode(data []byte, obj any) (lost, err error) {
	strict, err := sigsjson.UnmarshalStrict(data, obj)
	return errors.Join(strict...), err
}

// workload is an object of one of podKinds, with pointers to where its pod is in it.
type workload struct {
	obj  metav1.Object
	meta *metav1.ObjectMeta
	spec *corev1.PodSpec
}

func template(obj metav1.Object, t *corev1.PodTemplateSpec) workload {
	return workload{obj, &t.ObjectMeta, &t.Spec}
}

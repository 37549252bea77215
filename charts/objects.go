package charts

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Objects splits rendered manifests into objects, dropping empty documents.
func Objects(manifest string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(manifest)), 4096)
	var out []*unstructured.Unstructured
	for i := 0; ; i++ {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("rendered document %d: %w", i, err)
		}
		if len(obj.Object) > 0 {
			out = append(out, obj)
		}
	}
}

// Typed converts the first of objs of the given kind, and name unless it is empty, into T; nil
// when there is none.
func Typed[T any](objs []*unstructured.Unstructured, kind, name string) (*T, error) {
	for _, obj := range objs {
		if obj.GetKind() != kind || (name != "" && obj.GetName() != name) {
			continue
		}
		out := new(T)
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, out); err != nil {
			return nil, fmt.Errorf("rendered %s %s: %w", kind, obj.GetName(), err)
		}
		return out, nil
	}
	return nil, nil
}

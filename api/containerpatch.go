package api

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Kuma's ContainerPatch objects (kuma.io/v1alpha1): JSON patches that a pod's
// kuma.io/container-patches, or the injector's KUMA_RUNTIME_KUBERNETES_INJECTOR_CONTAINER_PATCHES,
// apply to the sidecar and init containers. They live in the control plane's namespace.
const (
	ContainerPatchGroup    = "kuma.io"
	ContainerPatchVersion  = "v1alpha1"
	ContainerPatchKind     = "ContainerPatch"
	ContainerPatchResource = "containerpatches"
)

// FormPatchNames is the accepted form of lists of ContainerPatch names.
const FormPatchNames = "comma-separated ContainerPatch names, e.g. sidecar-limits,init-verbose"

// ContainerPatchSpec is a ContainerPatch's spec, as Kuma defines it.
type ContainerPatchSpec struct {
	// SidecarPatch applies to kuma-sidecar, InitPatch to kuma-init (or, in CNI mode, to the
	// validation container).
	SidecarPatch []JSONPatchOperation `json:"sidecarPatch,omitempty"`
	InitPatch    []JSONPatchOperation `json:"initPatch,omitempty"`
}

// JSONPatchOperation is one operation of a JSON patch (RFC 6902) whose value is written as JSON
// text in a string: `"\"info\""` for the string info, as in Kuma.
type JSONPatchOperation struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value string `json:"value,omitempty"`
	From  string `json:"from,omitempty"`
}

// PatchOps are the operations a ContainerPatch may use.
var PatchOps = []string{"add", "remove", "replace", "move", "copy"}

// JSONPatch renders operations as a JSON patch document, checking each: a known op, a path, and
// a value that is JSON text where the op needs one. field names the list in errors.
func JSONPatch(field string, ops []JSONPatchOperation) ([]byte, error) {
	var errs FieldErrors
	out := make([]map[string]any, 0, len(ops))
	for i, o := range ops {
		at := fmt.Sprintf("%s[%d]", field, i)
		if !slices.Contains(PatchOps, o.Op) {
			errs.Add(at+".op", invalid(o.Op, "", "is not a JSON patch operation", strings.Join(PatchOps, ", ")))
			continue
		}
		if !strings.HasPrefix(o.Path, "/") {
			errs.Add(at+".path", invalid(o.Path, "", "is not a JSON pointer", "a path such as /resources/limits/cpu"))
			continue
		}
		op := map[string]any{"op": o.Op, "path": o.Path}
		switch o.Op {
		case "add", "replace":
			var v any
			if err := json.Unmarshal([]byte(o.Value), &v); err != nil {
				errs.Add(at+".value", invalid(o.Value, "", "is not JSON text", `JSON, a string in quotes: "\"info\""`))
				continue
			}
			op["value"] = v
		case "move", "copy":
			if !strings.HasPrefix(o.From, "/") {
				errs.Add(at+".from", invalid(o.From, "", "is not a JSON pointer", "a path such as /args/0"))
				continue
			}
			op["from"] = o.From
		}
		out = append(out, op)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return json.Marshal(out)
}

// ParsePatchNames parses a comma-separated list of ContainerPatch names; blank entries are
// skipped, as Kuma skips them.
func ParsePatchNames(s string) ([]string, error) {
	names, err := parseList(s, ",", FormPatchNames, whole(func(entry string) (string, string) {
		if !isDNS1123Subdomain(entry) {
			return "", "is not an object name (lowercase letters, digits, '-' and '.')"
		}
		return entry, ""
	}))
	return names, err
}

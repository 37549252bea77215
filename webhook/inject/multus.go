package inject

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni"
)

// formMultusNetworks is the accepted form of Multus's networks annotation.
const formMultusNetworks = "network names separated by ',' (such as macvlan-conf, kuma-cni), or a JSON list of network " +
	`selection objects (such as [{"name": "macvlan-conf"}])`

// withKumaCNI returns the pod's Multus networks annotation with the kuma-cni network listed, in
// the form the pod gave it: a list of names, or Multus's JSON list of network selection objects,
// whose other entries and fields are kept. Multus refuses an annotation it cannot parse, so a
// malformed one is the pod's error, reported at admission rather than at the pod's start.
func withKumaCNI(networks, namespace string) (string, error) {
	text := strings.TrimSpace(networks)
	if !strings.HasPrefix(text, "[") {
		names := strings.Split(strings.ReplaceAll(text, " ", ""), ",")
		if slices.Contains(names, cni.NetworkName) || slices.Contains(names, namespace+"/"+cni.NetworkName) {
			return networks, nil
		}
		return strings.TrimPrefix(networks+", "+cni.NetworkName, ", "), nil
	}
	var entries []json.RawMessage
	if err := json.Unmarshal([]byte(text), &entries); err != nil {
		return "", &api.FieldError{Value: networks, Problem: "is not a JSON list of networks: " + err.Error(), Accepted: formMultusNetworks}
	}
	for _, e := range entries {
		var sel struct {
			Name      *string `json:"name"`
			Namespace string  `json:"namespace"`
		}
		if err := json.Unmarshal(e, &sel); err != nil || sel.Name == nil {
			return "", &api.FieldError{Value: networks, Token: string(e), Problem: "is not a network selection object with a name", Accepted: formMultusNetworks}
		}
		if *sel.Name == cni.NetworkName && (sel.Namespace == "" || sel.Namespace == namespace) {
			return networks, nil
		}
	}
	out, err := json.Marshal(append(entries, json.RawMessage(`{"name":"`+cni.NetworkName+`"}`)))
	return string(out), err
}

package settings

import (
	"sync"

	"github.com/meshinit/meshinit/api"
)

// KeyKind says where a key lives on an object.
type KeyKind string

const (
	KindLabel      KeyKind = "label"
	KindAnnotation KeyKind = "annotation"
)

// Key documents one label or annotation of the contract; Keys is the single list that the README's
// table, the fuzzers and the webhook's checks are built from.
type Key struct {
	Name string
	Kind KeyKind
	// Written is true for keys meshinit sets on injected pods rather than reads from users.
	Written bool
	// Form is the accepted form of the value.
	Form string
	// Default is what applies when the key is absent.
	Default     string
	Description string
}

// Keys lists every label and annotation of the contract: the labels, the annotation of every
// setting a pod may set, and the annotations meshinit writes. It is built once, on first use, when
// every declaration has been made.
var Keys = sync.OnceValue(keys)

func keys() []Key {
	out := []Key{
		{Name: api.LabelSidecarInjection, Kind: KindLabel, Form: api.FormSwitch, Default: "no injection",
			Description: "On a Namespace or a Pod; the Pod's label wins. As an annotation it has no effect."},
		{Name: api.LabelMesh, Kind: KindLabel, Form: api.FormMeshName, Default: api.DefaultMesh,
			Description: "The pod's mesh: the Pod's label, else (kuma-dp before 3.0, deprecated) the Pod's annotation, else its Namespace's label."},
	}
	for _, s := range All {
		if s.Annotation != "" {
			out = append(out, Key{Name: s.Annotation, Kind: KindAnnotation, Form: s.AnnotationFormText(),
				Default: s.annotationDefault(), Description: s.Description})
		}
	}
	return append(out,
		Key{Name: api.AnnotationSidecarInjected, Kind: KindAnnotation, Written: true, Form: "true",
			Description: "Set on injected pods."},
		Key{Name: api.AnnotationTransparentProxying, Kind: KindAnnotation, Written: true, Form: "enabled",
			Description: "Set on injected pods, with the annotations below: Kuma 2.9-2.14's pod converter builds the Dataplane from them."},
		Key{Name: api.AnnotationInboundPort, Kind: KindAnnotation, Written: true, Form: FormWrittenPort,
			Description: "The inbound redirect port, for Kuma's pod converter."},
		Key{Name: api.AnnotationOutboundPort, Kind: KindAnnotation, Written: true, Form: FormWrittenPort,
			Description: "The outbound redirect port, for Kuma's pod converter."},
		Key{Name: api.AnnotationSidecarUID, Kind: KindAnnotation, Written: true, Form: "a UID",
			Description: "The sidecar's UID, for Kuma's kuma-cni and kumactl."},
		Key{Name: api.AnnotationTransparentProxyConfig, Kind: KindAnnotation, Written: true,
			Form:        "Kuma's " + api.ConfigKind + " document, with meshinit's additions under meshinit",
			Description: "The effective transparent-proxy configuration, read by kuma-init, kuma-dp and kuma-cni."},
		Key{Name: api.AnnotationDefaultContainer, Kind: KindAnnotation, Written: true, Form: "a container name",
			Description: "Set on single-container pods, so kubectl picks the app."},
		Key{Name: api.AnnotationMultusNetworks, Kind: KindAnnotation, Written: true, Form: "kuma-cni",
			Description: "Set in CNI mode, for Multus."},
	)
}

// FormWrittenPort is the form of the ports the injector writes.
const FormWrittenPort = "a port number"

// annotationDefault says what applies to a pod without the setting's annotation.
func (s *Setting) annotationDefault() string {
	switch {
	case s.Env != "" && s.Default != "":
		return "cluster default (" + s.Default + ")"
	case s.Env != "":
		return "cluster default"
	case s.Default != "":
		return s.Default
	}
	return "none"
}

// LookupKey returns the contract's entry for name.
func LookupKey(name string) (Key, bool) {
	for _, k := range Keys() {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

func discard[T any](parse func(string) (T, error)) func(string) error {
	return func(s string) error {
		_, err := parse(s)
		return err
	}
}

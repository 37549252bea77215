package settings

import (
	"fmt"

	"github.com/meshinit/meshinit/api"
)

// Setting declares one setting of the contract and every way it is spelled: the pod annotation
// that sets it for one pod, the injector's KUMA_RUNTIME_* variable that sets it for the cluster,
// kumactl's flag, the path of its field in the transparent-proxy configuration document, and the
// chart value that fills the variable. The injector's environment, the resolver, kuma-init's
// flags, the chart's value-to-variable mapping, the errors that name a field and the README's
// tables are all derived from these declarations, so a setting is added in one place: its
// declaration, plus the code of what it does.
type Setting struct {
	// Name identifies the setting in tables and tests, e.g. exclude-inbound-ports.
	Name string
	// Description says what the setting does, as a sentence.
	Description string

	// Annotation is the pod annotation that sets it for one pod; empty when pods cannot.
	Annotation string
	// AnnotationForm is the accepted form of the annotation when it is not Form, as for switches.
	AnnotationForm string
	// Merges means the annotation adds to the cluster's value rather than replacing it.
	Merges bool
	// EmptyKeepsCluster means an annotation whose value is an empty list keeps the cluster's value.
	EmptyKeepsCluster bool

	// Env is the injector's variable for the cluster's value; empty when there is none.
	Env string
	// EnvAliases are Kuma's own spellings of Env, accepted so that its deployments work unchanged.
	EnvAliases []string
	// EnvForm is the accepted form of the variable when it is not Form.
	EnvForm string
	// Default is the built-in cluster value, as the variable would spell it; empty is empty.
	Default string

	// Flag is `kumactl install transparent-proxy`'s flag, without its dashes; FlagValue names its
	// value in the help. DeprecatedFlags are older spellings kumactl still takes.
	Flag, FlagValue string
	DeprecatedFlags []string
	// FlagRepeatable means the flag may be given more than once: its first occurrence replaces the
	// document's value, and later ones add to it.
	FlagRepeatable bool
	// Field is the setting's path in the configuration document, from the field its Value's In
	// selects; empty when it is not there.
	Field string
	// Chart is the chart value that sets Env, such as dataPlane.drainTime; empty when the chart
	// has none or decides the variable itself.
	Chart string
	// InstallCNIEnv is install-cni's variable, for the settings of the CNI DaemonSet, which the
	// injector does not read: Chart then fills it in the DaemonSet.
	InstallCNIEnv string

	// Form is the accepted form of the setting's values.
	Form string

	// check validates a value of Form, and checkAnnotation one of the annotation; set for the
	// settings whose values this package parses.
	check, checkAnnotation func(string) error
	// setField parses a flag's text into a change of the document; clearField resets the field,
	// for a repeatable flag's first occurrence.
	setField   func(string) (func(*api.TransparentProxyConfig), error)
	clearField func(*api.TransparentProxyConfig)
	// flagDefault spells the flag's default for the help.
	flagDefault func() string
}

// Value is a setting whose values the api package parses, as T.
type Value[T any] struct {
	*Setting
	// Parse reads the setting's Form.
	Parse func(string) (T, error)
	// ParseAnnotation reads its AnnotationForm; nil when that is Form.
	ParseAnnotation func(string) (T, error)
	// In is the setting's field in the document, where one field holds it; nil when it is not in
	// the document, or is spread over fields, and Get and Set say how.
	In func(*api.TransparentProxyConfig) *T
	// Get and Set read and write the setting in a document; from In when it is given. A setting
	// spread over fields declares its Field path itself.
	Get func(*api.TransparentProxyConfig) T
	Set func(*api.TransparentProxyConfig, T)
	// FlagApply is what a value of the flag does to the document, when it does more or other than
	// setting the field.
	FlagApply func(T) func(*api.TransparentProxyConfig)
}

// AnnotationParser returns the parser of the setting's annotation.
func (v *Value[T]) AnnotationParser() func(string) (T, error) {
	if v.ParseAnnotation != nil {
		return v.ParseAnnotation
	}
	return v.Parse
}

// AnnotationFormText is the accepted form of the annotation.
func (s *Setting) AnnotationFormText() string {
	if s.AnnotationForm != "" {
		return s.AnnotationForm
	}
	return s.Form
}

// EnvFormText is the accepted form of the variable.
func (s *Setting) EnvFormText() string {
	if s.EnvForm != "" {
		return s.EnvForm
	}
	return s.Form
}

// FlagSetter returns what a value of the setting's flag does to a document.
func (s *Setting) FlagSetter() func(string) (func(*api.TransparentProxyConfig), error) {
	return s.setField
}

// ClearField resets the setting's field in a document, for the first occurrence of a repeatable
// flag.
func (s *Setting) ClearField(c *api.TransparentProxyConfig) { s.clearField(c) }

// FlagDefault is the flag's default as its help shows it: the document's default, or the zero
// value for flags that are not a plain spelling of their field.
func (s *Setting) FlagDefault() string { return s.flagDefault() }

// All lists every declared setting, in the order of the README's tables.
var All []*Setting

func declare(s *Setting) *Setting {
	All = append(All, s)
	return s
}

func declareValue[T any](v *Value[T]) *Value[T] {
	declare(v.Setting)
	v.check = discard(v.Parse)
	if v.Annotation != "" {
		v.checkAnnotation = discard(v.AnnotationParser())
	}
	if v.In != nil {
		v.Field = api.FieldPath(v.In)
		v.Get = func(c *api.TransparentProxyConfig) T { return *v.In(c) }
		v.Set = func(c *api.TransparentProxyConfig, x T) { *v.In(c) = x }
	}
	if v.In == nil && v.Set != nil && !api.IsPath(v.Field) {
		panic("settings: " + v.Name + " names a field " + v.Field + " the document does not have")
	}
	if v.Set != nil {
		v.clearField = func(c *api.TransparentProxyConfig) {
			var zero T
			v.Set(c, zero)
		}
	}
	if v.Flag == "" {
		return v
	}
	apply := v.FlagApply
	def := func() (zero T) { return zero }
	switch {
	case apply != nil:
	case v.Set != nil:
		apply = func(x T) func(*api.TransparentProxyConfig) {
			return func(c *api.TransparentProxyConfig) { v.Set(c, x) }
		}
		def = func() T { return v.Get(api.DefaultTransparentProxyConfig()) }
	default:
		panic("settings: flag --" + v.Flag + " neither sets a field nor says what it does")
	}
	// Spelled when the help asks: every flag's default through fmt.Sprint, at every start, was a
	// fortieth of a kuma-init install.
	v.flagDefault = func() string { return fmt.Sprint(def()) }
	v.setField = func(text string) (func(*api.TransparentProxyConfig), error) {
		x, err := v.Parse(text)
		return apply(x), err
	}
	return v
}

// ByField returns the setting whose document field is path.
func ByField(path string) (*Setting, bool) {
	for _, s := range All {
		if s.Field != "" && s.Field == path {
			return s, true
		}
	}
	return nil, false
}

package charts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"

	"github.com/meshinit/meshinit/api"
)

// schemaURL names the chart's schema in validation errors' locations.
const schemaURL = "file:///values.schema.json"

var printer = message.NewPrinter(language.English)

// ValidateValues checks values, merged over the chart's defaults as Helm merges them, against
// the chart's values.schema.json, as Helm does before rendering; unlike Helm's, its errors give
// each bad value beside its key, and what is accepted there, all at once.
func ValidateValues(ch *chart.Chart, values map[string]any) error {
	merged, err := util.CoalesceValues(ch, values)
	if err != nil {
		return err
	}
	// Through JSON, so that numbers are what the validator expects whatever YAML or --set made.
	data, err := json.Marshal(merged.AsMap())
	if err != nil {
		return err
	}
	instance, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return err
	}
	schema, doc, err := compiled(ch.Schema)
	if err != nil {
		return err
	}
	verr, ok := schema.Validate(instance).(*jsonschema.ValidationError)
	if !ok {
		return nil
	}
	var errs api.FieldErrors
	for _, e := range problems(verr) {
		errs = append(errs, describe(e, doc, instance))
	}
	slices.SortFunc(errs, func(a, b *api.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return errs.Err()
}

// compiledSchemas caches compiled schemas by their text: the embedded chart's is compiled once.
var compiledSchemas sync.Map

type compiledSchema struct {
	schema *jsonschema.Schema
	doc    any
}

// compiled returns the schema compiled, and as a document for reading descriptions from.
func compiled(text []byte) (*jsonschema.Schema, any, error) {
	if c, ok := compiledSchemas.Load(string(text)); ok {
		return c.(compiledSchema).schema, c.(compiledSchema).doc, nil
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(text))
	if err != nil {
		return nil, nil, fmt.Errorf("the chart's values.schema.json: %w", err)
	}
	compiler := jsonschema.NewCompiler()
	if err := compiler.AddResource(schemaURL, doc); err != nil {
		return nil, nil, err
	}
	schema, err := compiler.Compile(schemaURL)
	if err != nil {
		return nil, nil, fmt.Errorf("the chart's values.schema.json: %w", err)
	}
	compiledSchemas.Store(string(text), compiledSchema{schema, doc})
	return schema, doc, nil
}

// problems are the errors to report: the leaves, except that a failed oneOf is reported whole,
// since each of its branches failing says little.
func problems(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	switch e.ErrorKind.(type) {
	case *kind.OneOf, *kind.AnyOf:
		return []*jsonschema.ValidationError{e}
	}
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, problems(c)...)
	}
	return out
}

// describe turns one schema error into a FieldError: the key, its value, the problem and, from
// the schema, the accepted form.
func describe(e *jsonschema.ValidationError, doc, instance any) *api.FieldError {
	field := strings.Join(e.InstanceLocation, ".")
	value := at(instance, e.InstanceLocation)
	node, _ := at(doc, pointer(e.SchemaURL)).(map[string]any)
	fe := &api.FieldError{Field: field, Value: compact(value)}
	if description, ok := node["description"].(string); ok {
		fe.Accepted = description
	}
	switch k := e.ErrorKind.(type) {
	case *kind.AdditionalProperties:
		fe.Value = ""
		fe.Problem = fmt.Sprintf("has no key %s", quoteAll(k.Properties))
		if props, ok := node["properties"].(map[string]any); ok {
			keys := make([]string, 0, len(props))
			for key := range props {
				keys = append(keys, key)
			}
			slices.Sort(keys)
			fe.Accepted = "the keys " + strings.Join(keys, ", ")
		}
	case *kind.Type:
		fe.Problem = "is " + article(k.Got)
		fe.Accepted = orList(k.Want, article)
	case *kind.Enum:
		fe.Problem = "is not accepted"
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = compact(w)
		}
		fe.Accepted = orList(want, func(s string) string { return s })
	case *kind.Minimum:
		fe.Problem = "is less than " + k.Want.RatString()
	case *kind.Maximum:
		fe.Problem = "is more than " + k.Want.RatString()
	case *kind.MinLength:
		fe.Problem = "is empty"
	case *kind.Pattern:
		fe.Problem = "is not accepted"
	case *kind.Required:
		fe.Value = ""
		fe.Problem = "misses " + quoteAll(k.Missing)
	case *kind.OneOf, *kind.AnyOf:
		fe.Problem = "is not accepted"
	default:
		fe.Problem = e.ErrorKind.LocalizedString(printer)
	}
	if field == "" {
		fe.Field = "values"
	}
	return fe
}

// pointer is the JSON pointer of a schema location, as path segments.
func pointer(url string) []string {
	_, fragment, _ := strings.Cut(url, "#")
	var out []string
	for _, seg := range strings.Split(strings.TrimPrefix(fragment, "/"), "/") {
		if seg != "" {
			out = append(out, strings.NewReplacer("~1", "/", "~0", "~").Replace(seg))
		}
	}
	return out
}

// at is the value at a path of object keys (or list indexes) in a JSON document, nil if absent.
func at(doc any, path []string) any {
	for _, seg := range path {
		switch d := doc.(type) {
		case map[string]any:
			doc = d[seg]
		case []any:
			var i int
			if _, err := fmt.Sscan(seg, &i); err != nil || i < 0 || i >= len(d) {
				return nil
			}
			doc = d[i]
		default:
			return nil
		}
	}
	return doc
}

// compact spells a value for a message: strings as they are, the rest as JSON.
func compact(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}

func quoteAll(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, ", ")
}

func article(jsonType string) string {
	switch jsonType {
	case "integer", "object", "array":
		return "an " + jsonType
	case "null":
		return "null"
	}
	return "a " + jsonType
}

func orList(items []string, each func(string) string) string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = each(it)
	}
	if len(out) < 2 {
		return strings.Join(out, "")
	}
	return strings.Join(out[:len(out)-1], ", ") + " or " + out[len(out)-1]
}

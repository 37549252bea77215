package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// MaxDocumentSize bounds the documents Parse reads; the annotation they usually come from is
// limited by Kubernetes to 256 KiB together with the pod's other annotations.
const MaxDocumentSize = 256 << 10

// FormCount is the accepted form of counters such as wait and maxRetries.
const FormCount = "a whole number 0 or more"

// ParseCount parses a counter such as wait or maxRetries.
func ParseCount(s string) (uint, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, invalid(s, "", "is not a whole number", FormCount)
	}
	return uint(n), nil
}

// Document is what reading one configuration document made: the configuration, over the base it
// was read onto; the paths of the fields it gave; and warnings about what it holds that meshinit
// does not read.
type Document struct {
	Config   *TransparentProxyConfig
	Given    []string
	Warnings []string
}

// ParseTransparentProxyConfig reads a configuration document over the defaults: see
// ReadTransparentProxyConfig.
func ParseTransparentProxyConfig(data []byte) (*TransparentProxyConfig, error) {
	doc, err := ReadTransparentProxyConfig(data, DefaultTransparentProxyConfig())
	if err != nil {
		return nil, err
	}
	return doc.Config, nil
}

// ReadTransparentProxyConfig reads a document in Kuma's format, YAML or JSON, onto a copy of base,
// as Kuma's loader reads several files into one configuration: fields left out keep base's value,
// lists given replace base's. Values of the wrong form and invalid settings are all reported at
// once, each with its path in the document; fields neither Kuma nor meshinit know are warnings,
// since Kuma's readers ignore them (a newer Kuma's field, say), but they may be typos.
func ReadTransparentProxyConfig(data []byte, base *TransparentProxyConfig) (*Document, error) {
	if len(data) > MaxDocumentSize {
		return nil, &FieldError{Field: "document", Problem: fmt.Sprintf("is %d bytes, over the limit", len(data)),
			Accepted: fmt.Sprintf("at most %d bytes", MaxDocumentSize)}
	}
	raw, err := decodeYAML(data)
	var second errSecondDocument
	switch {
	case errors.As(err, &second):
		return nil, &FieldError{Field: "document", Problem: fmt.Sprintf("has a second YAML document, starting at line %d, whose settings would be ignored", second.line),
			Accepted: "one " + ConfigKind + " document, with no other after ---"}
	case err != nil:
		return nil, &FieldError{Field: "document", Problem: "is not YAML or JSON: " + err.Error(),
			Accepted: "a " + ConfigKind + " document"}
	}
	if raw == nil {
		return nil, &FieldError{Field: "document", Problem: "is empty",
			Accepted: "a " + ConfigKind + " document, such as redirect: {inbound: {excludePorts: [22]}}"}
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, &FieldError{Field: "document", Problem: "is not an object",
			Accepted: "a " + ConfigKind + " document, such as redirect: {inbound: {excludePorts: [22]}}"}
	}
	d := &decoder{}
	cfg := base.clone()
	d.object("", obj, reflect.ValueOf(cfg).Elem())
	d.errs.Add("", cfg.Validate())
	if err := d.errs.Err(); err != nil {
		return nil, err
	}
	slices.Sort(d.given)
	return &Document{Config: cfg, Given: d.given, Warnings: d.warnings}, nil
}

// errSecondDocument is a document after the first, at its line.
type errSecondDocument struct{ line int }

func (e errSecondDocument) Error() string { return fmt.Sprintf("a second document at line %d", e.line) }

// emptyDocument reports whether a document holds nothing: a bare "---" at the end, or comments.
func emptyDocument(n *yamlv3.Node) bool {
	if n.Kind == yamlv3.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	return n.Kind == 0 || n.Kind == yamlv3.DocumentNode && len(n.Content) == 0 ||
		n.Kind == yamlv3.ScalarNode && n.Tag == "!!null" && (n.Value == "" || n.Value == "~" || n.Value == "null")
}

// clone copies the configuration deeply, so that reading onto it changes no list of the original.
func (c *TransparentProxyConfig) clone() *TransparentProxyConfig {
	data, err := json.Marshal(c)
	if err != nil {
		panic("api: a configuration does not marshal: " + err.Error())
	}
	out := &TransparentProxyConfig{}
	if err := json.Unmarshal(data, out); err != nil {
		panic("api: a configuration does not unmarshal: " + err.Error())
	}
	return out
}

// decodeYAML reads YAML 1.2 (so "yes" stays a string, not a boolean) or JSON, with numbers kept as
// json.Number and duplicate keys refused. A second document is refused rather than ignored, as
// Kuma's loader ignores it: its settings would silently not apply.
func decodeYAML(data []byte) (any, error) {
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	var generic any
	if err := dec.Decode(&generic); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	for {
		var next yamlv3.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if !emptyDocument(&next) {
			return nil, errSecondDocument{line: next.Line}
		}
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return nil, err
	}
	numbers := json.NewDecoder(bytes.NewReader(js))
	numbers.UseNumber()
	var raw any
	return raw, numbers.Decode(&raw)
}

// MarshalCompact writes the configuration as one line of JSON, after validating it: what the
// webhook stores in the pod's annotation, where every byte is stored, sent and decoded again with
// each pod.
func (c *TransparentProxyConfig) MarshalCompact() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(c)
}

// Marshal writes the configuration as a YAML document, after validating it. Fields come in their
// declared order, header first, rather than sorted as sigs.k8s.io/yaml would write them.
func (c *TransparentProxyConfig) Marshal() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	js, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(js, &doc); err != nil {
		return nil, err
	}
	plainStyle(&doc)
	var out bytes.Buffer
	enc := yamlv3.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return out.Bytes(), enc.Close()
}

// plainStyle drops the JSON flow and quoting styles; the encoder quotes what needs it.
func plainStyle(n *yamlv3.Node) {
	n.Style = 0
	for _, child := range n.Content {
		plainStyle(child)
	}
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// decoder fills a configuration from a decoded document by the fields' json names, recording
// every problem with its path rather than stopping at the first, as encoding/json would, and the
// paths of the fields given.
type decoder struct {
	errs     FieldErrors
	given    []string
	warnings []string
}

func (d *decoder) object(path string, obj map[string]any, v reflect.Value) {
	t := v.Type()
	index := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		index[name] = i
	}
	for _, key := range slices.Sorted(maps.Keys(obj)) {
		field := joinPath(path, key)
		i, ok := index[key]
		if !ok {
			d.warnings = append(d.warnings, fmt.Sprintf("%s is not a field Kuma or meshinit reads; it is ignored", field))
			continue
		}
		d.value(field, obj[key], v.Field(i))
	}
}

func (d *decoder) value(path string, raw any, v reflect.Value) {
	if raw == nil {
		return // null keeps the base's value
	}
	if v.Kind() != reflect.Struct || v.Addr().Type().Implements(unmarshalerType) {
		d.given = append(d.given, path)
	}
	errs := &d.errs
	if v.Addr().Type().Implements(unmarshalerType) {
		data, _ := json.Marshal(raw)
		errs.Add(path, v.Addr().Interface().(json.Unmarshaler).UnmarshalJSON(data))
		return
	}
	text := scalarText(raw)
	switch v.Kind() {
	case reflect.Struct:
		obj, ok := raw.(map[string]any)
		if !ok {
			errs.Add(path, &FieldError{Value: text, Problem: "is not an object",
				Accepted: "an object with the fields of " + path})
			return
		}
		d.object(path, obj, v)
	case reflect.Bool:
		b, ok := raw.(bool)
		if s, isText := raw.(string); isText {
			// YAML 1.1, which Kuma's readers speak, reads yes and no as booleans.
			var err error
			if b, err = ParseBool(s); err != nil {
				b, err = strconv.ParseBool(s) // as Kuma reads its variables: 1, t, TRUE...
			}
			ok = err == nil
		}
		if !ok {
			errs.Add(path, invalid(text, "", "is not a boolean", FormBool))
			return
		}
		v.SetBool(b)
	case reflect.Uint16: // ports (Validate refuses 0), and the log level
		n, err := strconv.ParseUint(strings.TrimSpace(text), 10, 16)
		if err != nil {
			if isDigits(strings.TrimSpace(text)) {
				errs.Add(path, invalid(text, "", "is out of range 1-65535", FormPort))
			} else {
				errs.Add(path, invalid(text, "", "is not a port number", FormPort))
			}
			return
		}
		v.SetUint(n)
	case reflect.Uint:
		n, err := strconv.ParseUint(text, 10, 32)
		if err != nil {
			errs.Add(path, invalid(text, "", "is not a whole number", FormCount))
			return
		}
		v.SetUint(n)
	case reflect.String: // a number is its text: kumaDPUser: 5678
		switch raw.(type) {
		case string, json.Number:
			v.SetString(text)
		default:
			errs.Add(path, &FieldError{Value: text, Problem: "is not a string"})
		}
	default:
		panic(fmt.Sprintf("api: document field %s has unsupported kind %s", path, v.Kind()))
	}
}

// scalarText is how a raw value is quoted in errors.
func scalarText(raw any) string {
	switch x := raw.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	default:
		data, _ := json.Marshal(x)
		return string(data)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

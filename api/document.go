package api

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// ParseTransparentProxyConfig reads a TransparentProxyConfig document, YAML or JSON. Fields left
// out keep their defaults; unknown fields, values of the wrong form and invalid settings are all
// reported at once, each with its path in the document.
func ParseTransparentProxyConfig(data []byte) (*TransparentProxyConfig, error) {
	if len(data) > MaxDocumentSize {
		return nil, &FieldError{Field: "document", Problem: fmt.Sprintf("is %d bytes, over the limit", len(data)),
			Accepted: fmt.Sprintf("at most %d bytes", MaxDocumentSize)}
	}
	raw, err := decodeYAML(data)
	if err != nil {
		return nil, &FieldError{Field: "document", Problem: "is not YAML or JSON: " + err.Error(),
			Accepted: "a " + ConfigKind + " document"}
	}
	if raw == nil {
		return nil, &FieldError{Field: "document", Problem: "is empty",
			Accepted: "a " + ConfigKind + " document starting with apiVersion: " + ConfigAPIVersion}
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, &FieldError{Field: "document", Problem: "is not an object",
			Accepted: "a " + ConfigKind + " document starting with apiVersion: " + ConfigAPIVersion}
	}
	var errs FieldErrors
	for _, key := range []string{"apiVersion", "kind"} {
		if _, ok := obj[key]; !ok {
			errs.Add(key, &FieldError{Problem: "is required", Accepted: map[string]string{
				"apiVersion": ConfigAPIVersion, "kind": ConfigKind}[key]})
		}
	}
	cfg := DefaultTransparentProxyConfig()
	decodeObject("", obj, reflect.ValueOf(cfg).Elem(), &errs)
	errs.Add("", cfg.Validate())
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeYAML reads YAML 1.2 (so "yes" stays a string, not a boolean) or JSON, with numbers kept as
// json.Number and duplicate keys refused.
func decodeYAML(data []byte) (any, error) {
	var generic any
	if err := yamlv3.Unmarshal(data, &generic); err != nil {
		return nil, err
	}
	js, err := json.Marshal(generic)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var raw any
	return raw, dec.Decode(&raw)
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

// decodeObject fills the struct v from obj by the fields' json names, recording every problem
// with its path rather than stopping at the first, as encoding/json would.
func decodeObject(path string, obj map[string]any, v reflect.Value, errs *FieldErrors) {
	t := v.Type()
	index := make(map[string]int, t.NumField())
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		index[name] = i
		names = append(names, name)
	}
	keys := make([]string, 0, len(obj))
	for key := range obj {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		field := joinPath(path, key)
		i, ok := index[key]
		if !ok {
			errs.Add(field, &FieldError{Problem: "is not a field of " + orDocument(path),
				Accepted: strings.Join(names, ", ")})
			continue
		}
		decodeValue(field, obj[key], v.Field(i), errs)
	}
}

func decodeValue(path string, raw any, v reflect.Value, errs *FieldErrors) {
	if raw == nil {
		return // null keeps the default
	}
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
		decodeObject(path, obj, v, errs)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			errs.Add(path, invalid(text, "", "is not a boolean", FormBool))
			return
		}
		v.SetBool(b)
	case reflect.Uint16: // every uint16 of the document is a port
		port, err := ParsePort(text)
		if errs.Add(path, err) {
			return
		}
		v.SetUint(uint64(port))
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

func orDocument(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

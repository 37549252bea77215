package conflist

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/cni"
)

// Error is a network configuration file that kuma-cni cannot be put into or taken out of. The
// file is left as it was.
type Error struct {
	File    string
	Problem string
}

func (e *Error) Error() string { return e.File + ": " + e.Problem }

// span is a value's byte range in the file.
type span struct{ start, end int }

// document is a parsed network configuration: where its parts are, so that edits touch nothing
// else.
type document struct {
	file    string
	data    []byte
	members map[string]span
}

// plugin is one element of a conflist's plugins array.
type plugin struct {
	span
	Type       string `json:"type"`
	CNIVersion string `json:"cniVersion"`
}

// parse reads the top level of a network configuration: a single JSON object with no key twice
// (runtimes would silently take the last one) and nothing after it.
func parse(file string, data []byte) (*document, error) {
	doc := &document{file: file, data: data, members: map[string]span{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, doc.fail("is empty; accepted: a network configuration, one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return nil, doc.syntax(err)
	} else if tok != json.Delim('{') {
		return nil, doc.fail("is not a JSON object; accepted: a network configuration, one JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, doc.syntax(err)
		}
		key := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, doc.syntax(err)
		}
		if _, dup := doc.members[key]; dup {
			return nil, doc.fail(fmt.Sprintf("has the key %q more than once, and runtimes read only the last; accepted: each key once", key))
		}
		end := int(dec.InputOffset())
		doc.members[key] = span{end - len(raw), end}
	}
	if _, err := dec.Token(); err != nil {
		return nil, doc.syntax(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, doc.syntax(err)
	}
	return doc, nil
}

// value returns a top-level member's raw JSON, and whether there is one.
func (d *document) value(key string) ([]byte, bool) {
	s, ok := d.members[key]
	return d.data[s.start:s.end], ok
}

// stringValue returns a top-level string member; "" when absent.
func (d *document) stringValue(key string) (string, error) {
	raw, ok := d.value(key)
	if !ok {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", d.fail(fmt.Sprintf("has %s %s, which is not a string", key, raw))
	}
	return s, nil
}

// plugins reads the plugins array of a conflist: every element an object with a type.
func (d *document) plugins() ([]plugin, error) {
	s, ok := d.members["plugins"]
	if !ok {
		return nil, d.fail(`has no "plugins" array; accepted: a conflist with its plugins inline`)
	}
	dec := json.NewDecoder(bytes.NewReader(d.data[s.start:s.end]))
	if tok, _ := dec.Token(); tok != json.Delim('[') {
		return nil, d.fail(fmt.Sprintf(`has "plugins" %.40s, which is not an array`, d.data[s.start:s.end]))
	}
	var list []plugin
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, d.syntax(err)
		}
		end := s.start + int(dec.InputOffset())
		p := plugin{span: span{end - len(raw), end}}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, d.fail(fmt.Sprintf("has plugins[%d] %.60s, which is not an object with a string type and cniVersion", len(list), raw))
		}
		if p.Type == "" {
			return nil, d.fail(fmt.Sprintf(`has plugins[%d] with no "type"; accepted: plugins that each name their type`, len(list)))
		}
		list = append(list, p)
	}
	return list, nil
}

// checkVersions refuses a list whose plugins disagree on the CNI version: runtimes hand every
// plugin the list's version, so a plugin that declares another was written for another list.
// kuma-cni's own entry does not count: it is replaced by one that declares none.
func (d *document) checkVersions(list []plugin) error {
	version, err := d.stringValue("cniVersion")
	if err != nil {
		return err
	}
	declaredBy := "the list"
	for i, p := range list {
		switch {
		case p.CNIVersion == "" || p.CNIVersion == version || p.isOurs():
		case version == "":
			version, declaredBy = p.CNIVersion, fmt.Sprintf("plugins[%d] (%s)", i, list[i].Type)
		default:
			return d.fail(fmt.Sprintf("mixes CNI versions: plugins[%d] (%s) declares cniVersion %q, %s %q; accepted: one cniVersion for the whole list",
				i, p.Type, p.CNIVersion, declaredBy, version))
		}
	}
	return nil
}

// formVersions is the accepted form of a configuration's CNI version.
var formVersions = "a cniVersion kuma-cni speaks: " + strings.Join(cni.SupportedVersions[:len(cni.SupportedVersions)-1], ", ") +
	" or " + cni.SupportedVersions[len(cni.SupportedVersions)-1]

// checkSupported refuses a configuration that declares a CNI version kuma-cni does not speak,
// which the runtime would hand it on every call: every ADD and DEL of the node would fail. Both
// spellings count: cniVersion, and CNI 1.1.0's cniVersions, of which a runtime takes the highest
// it knows, so each must do.
func (d *document) checkSupported() error {
	v, err := d.stringValue("cniVersion")
	if err != nil {
		return err
	}
	if v != "" && !slices.Contains(cni.SupportedVersions, v) {
		return d.fail(fmt.Sprintf("declares cniVersion %q, which kuma-cni does not speak; accepted: %s", v, formVersions))
	}
	raw, ok := d.value("cniVersions")
	if !ok {
		return nil
	}
	var vs []string
	if err := json.Unmarshal(raw, &vs); err != nil {
		return d.fail(fmt.Sprintf("has cniVersions %.60s, which is not an array of strings", raw))
	}
	for _, v := range vs {
		if !slices.Contains(cni.SupportedVersions, v) {
			return d.fail(fmt.Sprintf("declares %q in cniVersions, of which a runtime may pick the highest it knows, and kuma-cni does not speak it; accepted: %s", v, formVersions))
		}
	}
	return nil
}

func (d *document) fail(problem string) error { return &Error{File: d.file, Problem: problem} }

// syntax reports a JSON error with the line and column it is at. The decoder's offsets depend on
// how it was reading, so the error is taken from Unmarshal, which counts from the file's start.
func (d *document) syntax(err error) error {
	if uerr := json.Unmarshal(d.data, new(any)); uerr != nil {
		err = uerr
	}
	return d.fail("is not valid JSON: " + err.Error() + d.at(err))
}

// at says where a syntax error is, as " (line L, column C)".
func (d *document) at(err error) string {
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return ""
	}
	// Offset counts the bytes read, the offending one included.
	pos := max(0, min(int(se.Offset), len(d.data))-1)
	line := bytes.Count(d.data[:pos], []byte("\n")) + 1
	column := pos - bytes.LastIndexByte(d.data[:pos], '\n')
	return " (line " + strconv.Itoa(line) + ", column " + strconv.Itoa(column) + ")"
}

// isOurs reports whether a plugin is kuma-cni.
func (p plugin) isOurs() bool { return p.Type == cni.PluginType }

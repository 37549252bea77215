package conflist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/cni"
)

// Insert returns the network configuration file name, whose content is data, with kuma-cni's
// entry at the end of its plugin chain, and the file's name from then on. An entry of kuma-cni
// already there is replaced in place, so inserting again changes nothing. A .conflist keeps its
// name; a .conf or .json becomes a .conflist (see the package documentation). A file that is not
// valid JSON, has no plugins, or mixes CNI versions is refused with an *Error.
func Insert(name string, data []byte, entry cni.NetConf, opts ...Option) (out []byte, newName string, err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ours, err := entryJSON(entry)
	if err != nil {
		return nil, "", err
	}
	switch filepath.Ext(name) {
	case ".conflist":
		out, err = insertIntoList(name, data, ours)
		return out, name, err
	case ".conf", ".json":
		out, err = convert(name, data, ours, o.versionOf)
		return out, ConflistName(name), err
	}
	return nil, "", &Error{File: name, Problem: "is not a CNI network configuration file; accepted: a name ending in .conflist, .conf or .json"}
}

// Option changes how Insert converts a .conf.
type Option func(*options)

type options struct {
	versionOf func(pluginType string) (string, error)
}

// VersionOf gives a converted .conf that declares no cniVersion the version f says its plugin
// speaks. A .conf may omit it, as Flannel's did: runtimes then hand the plugin 0.1.0, which
// predates chaining; a list made of it needs a version that has it.
func VersionOf(f func(pluginType string) (string, error)) Option {
	return func(o *options) { o.versionOf = f }
}

// Remove returns the conflist name, whose content is data, without kuma-cni's entry: the very
// bytes before Insert, when nothing else changed in between. Data without the entry comes back
// as it is. Restoring a converted .conf is RemoveFiles's job: the original is a file of its own.
func Remove(name string, data []byte) ([]byte, error) {
	if filepath.Ext(name) != ".conflist" {
		return data, nil
	}
	for {
		doc, list, err := parseList(name, data)
		if err != nil {
			return nil, err
		}
		i := indexOfOurs(list, 0)
		if i < 0 {
			return data, nil
		}
		data = removeAt(doc.data, list, i)
	}
}

// HasEntry reports whether data is a conflist with kuma-cni in its chain.
func HasEntry(data []byte) bool {
	_, list, err := parseList("", data)
	return err == nil && indexOfOurs(list, 0) >= 0
}

// ConflistName is the name a .conf or .json file gets when it becomes a list.
func ConflistName(name string) string {
	return strings.TrimSuffix(name, filepath.Ext(name)) + ".conflist"
}

// OriginalName is where a converted .conf or .json is kept until it is restored.
func OriginalName(name string) string { return name + originalSuffix }

const originalSuffix = ".kuma-cni-original"

func insertIntoList(name string, data, ours []byte) ([]byte, error) {
	doc, list, err := parseList(name, data)
	if err != nil {
		return nil, err
	}
	if err := doc.checkVersions(list); err != nil {
		return nil, err
	}
	if err := doc.checkSupported(); err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, doc.fail("has no plugins; accepted: a list with the network's own plugin, which kuma-cni chains after")
	}
	// Extra copies of our entry (hand edits) go first, so that exactly one is left to replace.
	for first := indexOfOurs(list, 0); first >= 0 && indexOfOurs(list, first+1) >= 0; {
		if doc, list, err = parseList(name, removeAt(doc.data, list, indexOfOurs(list, first+1))); err != nil {
			return nil, err
		}
	}
	if i := indexOfOurs(list, 0); i >= 0 {
		p := list[i]
		element := doc.data[p.start:p.end]
		text := layout(ours, bytes.ContainsRune(element, '\n'), lineIndent(doc.data, p.end), unitOf(doc.data, p))
		return splice(doc.data, p.start, p.end, text), nil
	}
	last := list[len(list)-1]
	space := doc.data[leadingSpace(doc.data, last.start):last.start]
	multiline := bytes.ContainsRune(space, '\n') || bytes.ContainsRune(doc.data[last.start:last.end], '\n')
	if len(space) == 0 && multiline {
		space = []byte(" ")
	}
	text := layout(ours, multiline, lineIndent(doc.data, last.end), unitOf(doc.data, last))
	return splice(doc.data, last.end, last.end, append(append([]byte(","), space...), text...)), nil
}

// convert makes a .conf into a list of the conf and kuma-cni, as described in the package
// documentation, indented like the .conf.
func convert(name string, data, ours []byte, versionOf func(string) (string, error)) ([]byte, error) {
	doc, err := parse(name, data)
	if err != nil {
		return nil, err
	}
	if _, ok := doc.members["plugins"]; ok {
		return nil, doc.fail(`holds a list of plugins, which runtimes do not load from a .conf or .json ("missing 'type'"); accepted: the same content in a .conflist`)
	}
	pluginType, err := doc.stringValue("type")
	if err != nil {
		return nil, err
	} else if pluginType == "" {
		return nil, doc.fail(`has no "type"; accepted: a single plugin's configuration`)
	}
	if _, err := doc.stringValue("name"); err != nil {
		return nil, err
	}
	if err := doc.checkSupported(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("{")
	if v, ok := doc.value("cniVersion"); ok {
		b.WriteString(`"cniVersion":`)
		b.Write(v)
		b.WriteString(",")
	} else if versionOf != nil {
		v, err := versionOf(pluginType)
		if err != nil {
			return nil, doc.fail(fmt.Sprintf("declares no cniVersion, and %v; accepted: a cniVersion in the file", err))
		}
		b.WriteString(`"cniVersion":` + strconv.Quote(v) + ",")
	}
	// libcni requires a list's name; runtimes give an unnamed .conf the name "" when they convert it.
	b.WriteString(`"name":`)
	if v, ok := doc.value("name"); ok {
		b.Write(v)
	} else {
		b.WriteString(`""`)
	}
	b.WriteString(`,"plugins":[`)
	if err := json.Compact(&b, data); err != nil {
		return nil, doc.syntax(err)
	}
	b.WriteString(",")
	b.Write(ours)
	b.WriteString("]}")
	out := b.Bytes()
	if unit := fileUnit(data); unit != "" {
		var indented bytes.Buffer
		_ = json.Indent(&indented, out, "", unit) // out is valid: built from validated parts
		out = indented.Bytes()
	}
	if bytes.HasSuffix(data, []byte("\n")) {
		out = append(out, '\n')
	}
	return out, nil
}

// parseList parses a conflist down to its plugins.
func parseList(name string, data []byte) (*document, []plugin, error) {
	doc, err := parse(name, data)
	if err != nil {
		return nil, nil, err
	}
	list, err := doc.plugins()
	return doc, list, err
}

// indexOfOurs is the index of the first kuma-cni entry at from or after, or -1.
func indexOfOurs(list []plugin, from int) int {
	for i := from; i < len(list); i++ {
		if list[i].isOurs() {
			return i
		}
	}
	return -1
}

// removeAt cuts plugin i out with the separator before it (after it, for the first), which is
// exactly what inserting it after its predecessor added.
func removeAt(data []byte, list []plugin, i int) []byte {
	start, end := list[i].start, list[i].end
	switch {
	case i > 0:
		start = list[i-1].end
	case len(list) > 1:
		end = list[1].start
	}
	return splice(data, start, end, nil)
}

func splice(data []byte, start, end int, text []byte) []byte {
	out := make([]byte, 0, len(data)-(end-start)+len(text))
	return append(append(append(out, data[:start]...), text...), data[end:]...)
}

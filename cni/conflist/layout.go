package conflist

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/meshinit/meshinit/cni"
)

// entryJSON is kuma-cni's entry, compact. Only kuma-cni's own settings are written: name and
// cniVersion come from the list, and the generic keys (capabilities, ipam, dns) mean nothing to
// kuma-cni. (cni.NetConf cannot be marshalled as it is: the MarshalJSON of the embedded
// types.NetConf would be promoted and drop kuma-cni's fields.)
func entryJSON(e cni.NetConf) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	err := enc.Encode(struct {
		Type       string         `json:"type"`
		LogLevel   string         `json:"log_level,omitempty"`
		LogSocket  string         `json:"log_socket,omitempty"`
		Kubernetes cni.Kubernetes `json:"kubernetes"`
	}{cni.PluginType, e.LogLevel, e.LogSocket, e.Kubernetes})
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
}

// layout indents compact JSON to sit at a line indented by prefix, one unit per level; or leaves
// it compact in a compact list.
func layout(compact []byte, multiline bool, prefix, unit string) []byte {
	if !multiline {
		return compact
	}
	var b bytes.Buffer
	_ = json.Indent(&b, compact, prefix, unit) // compact is our own valid JSON
	return b.Bytes()
}

// leadingSpace returns where the whitespace that ends at pos begins.
func leadingSpace(data []byte, pos int) int {
	for pos > 0 && strings.IndexByte(" \t\r\n", data[pos-1]) >= 0 {
		pos--
	}
	return pos
}

// lineIndent is the indentation of the line that pos is on.
func lineIndent(data []byte, pos int) string {
	start := bytes.LastIndexByte(data[:pos], '\n') + 1
	end := start
	for end < len(data) && (data[end] == ' ' || data[end] == '\t') {
		end++
	}
	return string(data[start:end])
}

// unitOf is one level of indentation, as the plugin p uses it inside itself: its first inner line
// is indented one unit more than its last line. Files that say nothing get the file's own unit.
func unitOf(data []byte, p plugin) string {
	element := data[p.start:p.end]
	if nl := bytes.IndexByte(element, '\n'); nl >= 0 {
		inner := lineIndent(element, nl+1)
		if outer := lineIndent(data, p.end); len(inner) > len(outer) && strings.HasPrefix(inner, outer) {
			return inner[len(outer):]
		}
	}
	if unit := fileUnit(data); unit != "" {
		return unit
	}
	return "  "
}

// fileUnit is the indentation of the file's first indented line: one level, since that line is
// a top-level key. "" for a file on one line.
func fileUnit(data []byte) string {
	for rest := data; ; {
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			return ""
		}
		rest = rest[nl+1:]
		if indent := lineIndent(rest, 0); indent != "" {
			return indent
		}
	}
}

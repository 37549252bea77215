package initcontainer

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/internal/atomicfile"
)

// DefaultFirewalldDirect is where firewalld keeps its direct rules, applied at every start.
const DefaultFirewalldDirect = "/etc/firewalld/direct.xml"

// direct is firewalld's direct.xml. Entries are kept generic so that those of others survive a
// rewrite unchanged.
type direct struct {
	XMLName xml.Name      `xml:"direct"`
	Entries []directEntry `xml:",any"`
}

type directEntry struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
}

func (e directEntry) attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// ours reports whether an entry is one of ours: a chain of ours, or a rule of ours as the kernel's
// rules are told apart.
func (e directEntry) ours() bool {
	switch e.XMLName.Local {
	case "chain":
		return isOurChain(e.attr("chain"))
	case "rule":
		return ourRule(e.attr("chain"), strings.TrimSpace(e.Text))
	}
	return false
}

// firewalldFirst and firewalldLast put our rules in built-in chains before or after others'
// direct rules (priority 0 unless they say), as install puts them on top or appends them; within
// a chain, increasing priorities keep their order, which firewalld does not guarantee among equal
// priorities.
const (
	firewalldFirst = -1000
	firewalldLast  = 1000
)

// firewalldEntries renders a plan as direct.xml entries.
func firewalldEntries(p Plan) []directEntry {
	var out []directEntry
	attrs := func(kv ...string) []xml.Attr {
		var a []xml.Attr
		for i := 0; i < len(kv); i += 2 {
			a = append(a, xml.Attr{Name: xml.Name{Local: kv[i]}, Value: kv[i+1]})
		}
		return a
	}
	for _, fp := range p.Families {
		for _, c := range fp.Chains {
			out = append(out, directEntry{XMLName: xml.Name{Local: "chain"}, Attrs: attrs("ipv", fp.Family, "table", c.Table, "chain", c.Name)})
		}
		position := map[string]int{}
		for _, r := range fp.Rules {
			key := r.Table + "/" + r.Chain
			priority := position[key]
			switch {
			case isOurChain(r.Chain):
			case r.Appended:
				priority += firewalldLast
			default:
				priority += firewalldFirst
			}
			position[key]++
			out = append(out, directEntry{XMLName: xml.Name{Local: "rule"},
				Attrs: attrs("ipv", fp.Family, "table", r.Table, "chain", r.Chain, "priority", strconv.Itoa(priority)),
				Text:  r.Spec()})
		}
	}
	return out
}

// StoreFirewalld writes the plan's rules into firewalld's direct.xml at path, replacing any of ours
// and keeping everyone else's entries, so that firewalld applies them at every start.
func StoreFirewalld(path string, p Plan) error {
	_, err := editDirect(path, firewalldEntries(p))
	return err
}

// RemoveFirewalld removes our entries from direct.xml at path, and the file when nothing else is
// left in it. It reports how many entries it removed.
func RemoveFirewalld(path string) (int, error) {
	return editDirect(path, nil)
}

// editDirect reads direct.xml (none is an empty one), replaces our entries with add, and writes the
// result atomically; an empty result removes the file. It reports how many of ours it dropped.
func editDirect(path string, add []directEntry) (int, error) {
	var d direct
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return 0, err
	default:
		if err := xml.Unmarshal(data, &d); err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
	}
	kept := slices.DeleteFunc(slices.Clone(d.Entries), directEntry.ours)
	removed := len(d.Entries) - len(kept)
	d.Entries = append(kept, add...)
	if len(d.Entries) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
		return removed, nil
	}
	return removed, writeAtomically(path, d)
}

func writeAtomically(path string, d direct) error {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(d); err != nil {
		return err
	}
	b.WriteString("\n")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// The file is firewalld's, with entries of others too: it keeps its mode.
	_, err := atomicfile.Write(path, &b, 0o644, atomicfile.KeepMode())
	return err
}

package initcontainer

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// State is the part of one family's rules that is ours, as iptables-save prints it: our chains, and
// per table and chain our rules in order, including those of ours in built-in chains. Specs keep
// iptables-save's text, so they can be deleted exactly and compared with desired rules.
type State struct {
	Chains map[string][]string            // table -> our chains, sorted
	Rules  map[string]map[string][]string // table -> chain -> specs
	// Edges says where our rules lie in each built-in chain that holds some, relative to the rules
	// of others there.
	Edges map[string]map[string]Edges // table -> built-in chain -> edges
	// Foreign counts rules that are not ours: what install and uninstall leave alone.
	Foreign int
}

// Edges place our rules in a built-in chain. Read from the kernel, Head counts ours before the
// first rule of others and Tail ours after the last; with no rule of others, both count all of
// ours. Desired, Head counts the rules to come first and Tail the rules to come last, in that order.
type Edges struct{ Head, Tail int }

func newState() State {
	return State{Chains: map[string][]string{}, Rules: map[string]map[string][]string{}, Edges: map[string]map[string]Edges{}}
}

// edges returns where the rules of a built-in chain go when s is desired: the first Head are
// inserted on top, the others appended. A state read from the kernel puts back on top what was on
// top, and appends the rest.
func (s State) edges(table, chain string) Edges {
	e, n := s.Edges[table][chain], len(s.Rules[table][chain])
	e.Head = min(e.Head, n)
	e.Tail = n - e.Head
	return e
}

func (s *State) addChain(table, chain string) {
	s.Chains[table] = append(s.Chains[table], chain)
	slices.Sort(s.Chains[table])
}

func (s *State) addRule(table, chain, spec string) {
	if s.Rules[table] == nil {
		s.Rules[table] = map[string][]string{}
	}
	s.Rules[table][chain] = append(s.Rules[table][chain], spec)
}

// place records, for a built-in chain, that a rule of ours (mine) or of others comes after those
// already read; othersBefore says whether a rule of others came before it.
func (s *State) place(table, chain string, mine, othersBefore bool) {
	e, ok := s.Edges[table][chain]
	switch {
	case mine && !ok && s.Edges[table] == nil:
		s.Edges[table] = map[string]Edges{}
	case !mine && !ok:
		return
	}
	if !mine {
		e.Tail = 0
	} else {
		if !othersBefore {
			e.Head++
		}
		e.Tail++
	}
	s.Edges[table][chain] = e
}

// Counts are how many chains and rules of ours a State holds, markers left out.
type Counts struct {
	Chains, Rules int
	// PerChain is the number of rules per table and chain, as kernelRuleCounts counts them.
	PerChain map[string]map[string]int
}

// Count counts the chains and rules of ours s holds.
func (s State) Count() Counts {
	c := Counts{PerChain: map[string]map[string]int{}}
	for _, chains := range s.Chains {
		for _, chain := range chains {
			if !strings.HasPrefix(chain, markerPrefix) {
				c.Chains++
			}
		}
	}
	for table, chains := range s.Rules {
		c.PerChain[table] = map[string]int{}
		for chain, specs := range chains {
			c.PerChain[table][chain] = len(specs)
			c.Rules += len(specs)
		}
	}
	return c
}

// Satisfies reports whether s, read from the kernel, is what desired asks for: the same chains of
// ours and the same rules of ours, in the same order within each chain, and in each built-in chain
// the rules desired first before every rule of others and those desired last after them. Where in
// between others' rules lie, and how many there are, does not count, and neither do markers, which
// say what install made, not what it installs.
func (s State) Satisfies(desired State) bool {
	if !maps.EqualFunc(withoutMarkers(s.Chains), withoutMarkers(desired.Chains), slices.Equal) ||
		!maps.EqualFunc(s.Rules, desired.Rules, func(a, b map[string][]string) bool { return maps.EqualFunc(a, b, slices.Equal) }) {
		return false
	}
	for table, chains := range desired.Edges {
		for chain := range chains {
			want, got := desired.edges(table, chain), s.Edges[table][chain]
			if got.Head < want.Head || got.Tail < want.Tail {
				return false
			}
		}
	}
	return true
}

// ParseState reads iptables-save output and keeps what is ours.
func ParseState(save []byte) (State, error) {
	st := newState()
	table := ""
	others := map[string]bool{} // built-in chains of the table with a rule of others read
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '*' {
			table = line[1:]
			clear(others)
			continue
		}
		if table == "" {
			return State{}, fmt.Errorf("iptables-save output line %d comes before any table: %q", n, line)
		}
		switch {
		case line == "COMMIT":
			table = ""
		case line[0] == ':':
			if name, _, _ := strings.Cut(line[1:], " "); isOurChain(name) {
				st.addChain(table, name)
			}
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			mine := ourRule(chain, spec)
			if mine {
				st.addRule(table, chain, spec)
			} else {
				st.Foreign++
			}
			if !isOurChain(chain) {
				st.place(table, chain, mine, others[chain])
				others[chain] = others[chain] || !mine
			}
		default:
			return State{}, fmt.Errorf("iptables-save output line %d is not understood: %q", n, line)
		}
	}
	return st, sc.Err()
}

// StateOf is the state a Ruleset asks of the kernel. In each built-in chain the rules that go
// first come before those appended, in their order.
func StateOf(rs Ruleset) State {
	st := newState()
	for _, c := range rs.Chains {
		st.addChain(c.Table, c.Name)
	}
	for _, appended := range []bool{false, true} {
		for _, r := range rs.Rules {
			if r.Appended != appended {
				continue
			}
			st.addRule(r.Table, r.Chain, r.Spec())
			if isOurChain(r.Chain) {
				continue
			}
			if st.Edges[r.Table] == nil {
				st.Edges[r.Table] = map[string]Edges{}
			}
			e := st.Edges[r.Table][r.Chain]
			if appended {
				e.Tail++
			} else {
				e.Head++
			}
			st.Edges[r.Table][r.Chain] = e
		}
	}
	return st
}

// withoutMarkers is chains by table, markers left out.
func withoutMarkers(chains map[string][]string) map[string][]string {
	out := map[string][]string{}
	for table, names := range chains {
		if kept := slices.DeleteFunc(slices.Clone(names), func(c string) bool { return strings.HasPrefix(c, markerPrefix) }); len(kept) > 0 {
			out[table] = kept
		}
	}
	return out
}

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
// per table and chain our rules in order, including those bearing our marker in chains that are
// not ours. Specs keep iptables-save's text, so they can be deleted exactly and compared with
// desired rules.
type State struct {
	Chains map[string][]string            // table -> our chains, sorted
	Rules  map[string]map[string][]string // table -> chain -> specs
	// Foreign counts rules that are not ours: what install and uninstall leave alone.
	Foreign int
}

func newState() State {
	return State{Chains: map[string][]string{}, Rules: map[string]map[string][]string{}}
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

// Counts are how many chains and rules of ours a State holds.
type Counts struct {
	Chains, Rules int
	// PerChain is the number of rules per table and chain, as kernelRuleCounts counts them.
	PerChain map[string]map[string]int
}

// Count counts the chains and rules of ours s holds.
func (s State) Count() Counts {
	c := Counts{PerChain: map[string]map[string]int{}}
	for _, chains := range s.Chains {
		c.Chains += len(chains)
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

// Equal reports whether two states hold the same chains of ours and the same rules of ours, in
// the same order within each chain. Foreign rules do not count.
func (s State) Equal(o State) bool {
	return maps.EqualFunc(s.Chains, o.Chains, slices.Equal) &&
		maps.EqualFunc(s.Rules, o.Rules, func(a, b map[string][]string) bool {
			return maps.EqualFunc(a, b, slices.Equal)
		})
}

// ParseState reads iptables-save output and keeps what is ours.
func ParseState(save []byte) (State, error) {
	st := newState()
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(save))
	sc.Buffer(make([]byte, 0, 64*1024), 64*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '*' {
			table = line[1:]
			continue
		}
		if table == "" {
			return State{}, fmt.Errorf("iptables-save output line %d comes before any table: %q", n, line)
		}
		switch {
		case line == "COMMIT":
			table = ""
		case line[0] == ':':
			if name, _, _ := strings.Cut(line[1:], " "); slices.Contains(ourChains, name) {
				st.addChain(table, name)
			}
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			if slices.Contains(ourChains, chain) || strings.Contains(spec, `--comment "`+Marker) {
				st.addRule(table, chain, spec)
			} else {
				st.Foreign++
			}
		default:
			return State{}, fmt.Errorf("iptables-save output line %d is not understood: %q", n, line)
		}
	}
	return st, sc.Err()
}

// StateOf is the state a Ruleset leaves in the kernel.
func StateOf(rs Ruleset) State {
	st := newState()
	for _, c := range rs.Chains {
		st.addChain(c.Table, c.Name)
	}
	for _, r := range rs.Rules {
		st.addRule(r.Table, r.Chain, r.Spec())
	}
	return st
}

package initcontainer

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
)

// Script returns the iptables-restore --noflush input that takes one family's rules of ours from
// current to desired, one transaction per table, so that there is no moment without rules. Rules
// and chains that are not ours are not named, so they stay as they are. It returns nil when
// current already equals desired: re-running changes nothing.
//
// Declaring a chain of ours creates it, or empties it when it exists; rules of ours in built-in
// chains are deleted by their exact text and added again, in order, those desired first inserted on
// top, before the rules of others, and the rest appended after them; chains of ours that are no
// longer wanted are deleted.
func Script(current, desired State) []byte {
	if current.Satisfies(desired) {
		return nil
	}
	var b bytes.Buffer
	for _, table := range tables {
		declared := union(desired.Chains[table], current.Chains[table])
		if len(declared) == 0 && len(current.Rules[table]) == 0 && len(desired.Rules[table]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", table)
		for _, chain := range declared {
			fmt.Fprintf(&b, ":%s - [0:0]\n", chain)
		}
		for _, chain := range builtinChains(current.Rules[table]) {
			for _, spec := range current.Rules[table][chain] {
				fmt.Fprintf(&b, "-D %s %s\n", chain, spec)
			}
		}
		for _, chain := range current.Chains[table] {
			if !slices.Contains(desired.Chains[table], chain) {
				fmt.Fprintf(&b, "-X %s\n", chain)
			}
		}
		for _, chain := range builtinChains(desired.Rules[table]) {
			head := desired.edges(table, chain).Head
			for i, spec := range desired.Rules[table][chain] {
				if i < head {
					fmt.Fprintf(&b, "-I %s %d %s\n", chain, i+1, spec)
				} else {
					fmt.Fprintf(&b, "-A %s %s\n", chain, spec)
				}
			}
		}
		for _, chain := range desired.Chains[table] {
			for _, spec := range desired.Rules[table][chain] {
				fmt.Fprintf(&b, "-A %s %s\n", chain, spec)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// builtinChains lists, sorted, the chains with rules of ours that are not chains of ours.
func builtinChains(rules map[string][]string) []string {
	var out []string
	for _, chain := range slices.Sorted(maps.Keys(rules)) {
		if !isOurChain(chain) {
			out = append(out, chain)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

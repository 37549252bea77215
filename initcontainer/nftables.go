package initcontainer

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/api"
)

// The nftables backend installs the very rules Build makes, in a table of meshinit's own per
// family, "table ip meshinit" and "table ip6 meshinit", both in one netlink transaction. A table
// per family rather than one inet table keeps each family's rules what Build makes of it, with
// each family's addresses, and lets a host without IPv6 skip its table.
//
// iptables' built-in chains, which others share, become base chains of our table hooked where
// they are, at priorities just before or after iptables' own (Kuma inserts some jumps before
// others' rules and appends others after them):
//
//	raw      PREROUTING, OUTPUT   raw - 1     (-301)  CT zones are set before anyone's
//	mangle   PREROUTING           mangle - 1  (-151)  invalid packets are dropped first
//	nat      PREROUTING, OUTPUT   dstnat - 1  (-101)  the rules iptables inserts on top
//	nat      PREROUTING, OUTPUT   dstnat + 1   (-99)  the rules iptables appends
//
// The kernel runs every nat chain of a hook in priority order until one maps the connection, so
// NAT decisions are the iptables backend's: others' DNAT (Docker's published ports, kube-proxy's
// services) in iptables' nat table (-100) wins over our appended rules and loses to our inserted
// ones, and firewalld's nftables table (-90) comes after ours, as after iptables'. Where an
// iptables rule of ours accepts in nat, ending the built-in chain and so every rule after it, ours
// maps the connection to its own destination, which ends the nat chains alike and is what the
// kernel would map it to. What differs: a bare ACCEPT or RETURN in others' iptables nat rules ends
// their chain but not ours, so their accepted connections are redirected by our appended rules,
// where with the iptables backend the jump to ours is never reached.
const nftTable = "meshinit"

// NFTChain is a chain of our table. Base chains have a type, a hook and a priority; the chains
// Build makes keep their names (KUMA_MESH_INBOUND...), those of raw and mangle with the table's
// name in them, since one table holds them all.
type NFTChain struct {
	Name     string `json:"name"`
	Type     string `json:"type,omitempty"`
	Hook     string `json:"hook,omitempty"`
	Priority int32  `json:"priority,omitempty"`
}

func (c NFTChain) base() bool { return c.Hook != "" }

// NFTRule is one rule of ours in nftables: a rule of Build's, in its chain of our table.
type NFTRule struct {
	Chain string `json:"chain"`
	// Text is the rule as nft list prints it, its comment included.
	Text    string `json:"rule"`
	Purpose string `json:"purpose"`
	family  Family
	comment string
	match   match
}

// NFTRuleset is one family's table of ours: its chains in the order they are made, which is the
// order nft lists them in, and every rule, each chain's in order.
type NFTRuleset struct {
	Family Family     `json:"-"`
	Chains []NFTChain `json:"chains"`
	Rules  []NFTRule  `json:"rules"`
}

// Priorities of iptables' tables, which ours are placed around.
const (
	priorityRaw    = -300
	priorityMangle = -150
	priorityDstNAT = -100
)

var tablePriority = map[string]int32{tableRaw: priorityRaw, tableMangle: priorityMangle, tableNat: priorityDstNAT}

// nftChainName names a chain Build made in table: nat's keep their names; raw's and mangle's,
// KUMA_MESH_PREROUTING in both, are told apart by their table.
func nftChainName(table, chain string) string {
	if table == tableNat {
		return chain
	}
	return "KUMA_MESH_" + strings.ToUpper(table) + "_" + strings.TrimPrefix(chain, "KUMA_MESH_")
}

// nftBaseChain is the base chain standing for a built-in chain of iptables, before others' rules
// or, appended, after them.
func nftBaseChain(table, builtin string, appended bool) NFTChain {
	c := NFTChain{Name: table + "_" + builtin, Type: "filter", Hook: strings.ToLower(builtin), Priority: tablePriority[table] - 1}
	if table == tableNat {
		c.Type = "nat"
	}
	if appended {
		c.Name += "_appended"
		c.Priority = tablePriority[table] + 1
	}
	return c
}

// NFTables is the nftables form of a family's rules.
func NFTables(rs Ruleset) NFTRuleset {
	out := NFTRuleset{Family: rs.Family}
	has := func(name string) bool {
		return slices.ContainsFunc(out.Chains, func(c NFTChain) bool { return c.Name == name })
	}
	// Each rule's chain, named once: a base chain of its table, or a chain of ours.
	chainOf := make([]NFTChain, len(rs.Rules))
	for i, r := range rs.Rules {
		if isOurChain(r.Chain) {
			chainOf[i] = NFTChain{Name: nftChainName(r.Table, r.Chain)}
		} else {
			chainOf[i] = nftBaseChain(r.Table, r.Chain, r.Appended)
		}
	}
	// Each table's base chains, in the order their rules come, then its own chains: rules jump
	// forward, as nft lists them.
	for _, table := range tables {
		for i, r := range rs.Rules {
			if c := chainOf[i]; r.Table == table && c.base() && !has(c.Name) {
				out.Chains = append(out.Chains, c)
			}
		}
		for _, c := range rs.Chains {
			if c.Table == table {
				out.Chains = append(out.Chains, NFTChain{Name: nftChainName(table, c.Name)})
			}
		}
	}
	out.Rules = make([]NFTRule, 0, len(rs.Rules))
	for _, c := range out.Chains {
		for i, r := range rs.Rules {
			chain := chainOf[i].Name
			if chain != c.Name {
				continue
			}
			m, purpose, comment := r.match, r.Purpose, r.Comment
			if m.target.verdict == verdictJump {
				// The purposes of jumps name the chain jumped to.
				m.target.chain = nftChainName(r.Table, m.target.chain)
				purpose = strings.ReplaceAll(purpose, r.match.target.chain, m.target.chain)
				comment = strings.ReplaceAll(comment, r.match.target.chain, m.target.chain)
			}
			if m.target.verdict == verdictAccept && r.Table == tableNat {
				m.target.verdict = verdictMapToSelf
			}
			nr := NFTRule{Chain: chain, Purpose: purpose, family: rs.Family, comment: comment, match: m}
			nr.Text = nr.text()
			out.Rules = append(out.Rules, nr)
		}
	}
	return out
}

// verdictMapToSelf is how nftables says iptables' ACCEPT in nat: the connection is mapped to its
// own destination, which ends the hook's nat chains, others' included, as ACCEPT ends iptables'
// built-in chain, and is what the kernel maps a connection to that no rule maps.
const verdictMapToSelf = "map to self"

// Text is the table in nft syntax, as nft list prints it; nft -f reads it back.
func (rs NFTRuleset) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s %s {\n", nftFamily(rs.Family), nftTable)
	for i, c := range rs.Chains {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "\tchain %s {\n", c.Name)
		if c.base() {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy accept;\n", c.Type, c.Hook, c.priorityText())
		}
		for _, r := range rs.Rules {
			if r.Chain == c.Name {
				fmt.Fprintf(&b, "\t\t%s\n", r.Text)
			}
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// priorityText spells a priority as nft does: by the standard name it is near, where nft has one
// for the hook.
func (c NFTChain) priorityText() string {
	names := map[int32]string{priorityRaw: "raw", priorityMangle: "mangle"}
	if c.Type == "nat" && c.Hook == "prerouting" {
		names = map[int32]string{priorityDstNAT: "dstnat"}
	}
	for base, name := range names {
		switch d := c.Priority - base; {
		case d == 0:
			return name
		case d > 0 && d <= 10:
			return fmt.Sprintf("%s + %d", name, d)
		case d < 0 && d >= -10:
			return fmt.Sprintf("%s - %d", name, -d)
		}
	}
	return strconv.Itoa(int(c.Priority))
}

func nftFamily(f Family) string {
	if f == IPv6 {
		return "ip6"
	}
	return "ip"
}

// text is the rule as nft prints it: matches in the order of their expressions, a protocol that
// ports imply left out, as nft leaves it out.
func (r NFTRule) text() string {
	m := r.match
	var w []string
	if m.in != "" {
		w = append(w, "iifname "+nftInterface(m.in))
	}
	if m.out != "" {
		w = append(w, "oifname "+nftInterface(m.out))
	}
	ip := nftFamily(r.family)
	if m.src.IsValid() {
		w = append(w, ip+" saddr "+nftPrefix(m.src))
	}
	if m.dst.IsValid() {
		op := ""
		if m.notDst {
			op = "!= "
		}
		w = append(w, ip+" daddr "+op+nftPrefix(m.dst))
	}
	switch {
	case m.sport != 0:
		w = append(w, fmt.Sprintf("%s sport %d", m.proto, m.sport))
	case m.dport != 0:
		w = append(w, fmt.Sprintf("%s dport %d", m.proto, m.dport))
	case len(m.dports) > 0:
		w = append(w, m.proto+" dport "+nftPorts(m.dports))
	case m.proto != "":
		w = append(w, "meta l4proto "+m.proto)
	}
	if m.owner != nil {
		w = append(w, "meta skuid "+nftRange(m.owner.First, m.owner.Last))
	}
	if m.ctInvalid {
		w = append(w, "ct state invalid")
	}
	if m.limited {
		w = append(w, "limit rate 10/minute")
	}
	t := m.target
	switch t.verdict {
	case verdictJump:
		w = append(w, "jump "+t.chain)
	case verdictReturn, verdictDrop, verdictAccept:
		w = append(w, strings.ToLower(t.verdict))
	case verdictMapToSelf:
		w = append(w, "dnat to "+ip+" daddr")
	case verdictRedirect:
		w = append(w, fmt.Sprintf("redirect to :%d", t.port))
	case verdictCT:
		w = append(w, fmt.Sprintf("ct zone set %d", t.zone))
	case verdictLog:
		l := fmt.Sprintf("log prefix %q", t.prefix)
		if t.level != 4 { // nft leaves out warn, the kernel's default
			l += " level " + nftLogLevels[t.level]
		}
		w = append(w, l)
	}
	if r.comment != "" {
		w = append(w, fmt.Sprintf("comment %q", r.comment))
	}
	return strings.Join(w, " ")
}

var nftLogLevels = [...]string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug"}

// nftInterface quotes an interface name; iptables' trailing + is nft's *.
func nftInterface(name string) string {
	if prefix, ok := strings.CutSuffix(name, "+"); ok {
		return `"` + strings.ReplaceAll(prefix, "*", `\*`) + `*"`
	}
	return `"` + strings.ReplaceAll(name, "*", `\*`) + `"`
}

// nftPrefix is an address, or a network with its length.
func nftPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.Masked().String()
}

func nftRange[T uint16 | uint32](first, last T) string {
	if first == last {
		return strconv.FormatUint(uint64(first), 10)
	}
	return fmt.Sprintf("%d-%d", first, last)
}

// nftPorts spells ports as nft prints them: a port, a range, or a set of them.
func nftPorts(ports api.PortRanges) string {
	merged := mergePorts(ports)
	if len(merged) == 1 {
		return nftRange(merged[0].First, merged[0].Last)
	}
	parts := make([]string, len(merged))
	for i, r := range merged {
		parts[i] = nftRange(r.First, r.Last)
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// mergePorts sorts ranges and joins those that overlap or touch: an interval set holds no two
// elements that overlap, and nft prints a set's elements in order.
func mergePorts(ports api.PortRanges) api.PortRanges {
	sorted := slices.Clone(ports)
	slices.SortFunc(sorted, func(a, b api.PortRange) int { return int(a.First) - int(b.First) })
	var out api.PortRanges
	for _, r := range sorted {
		if n := len(out); n > 0 && uint32(r.First) <= uint32(out[n-1].Last)+1 {
			out[n-1].Last = max(out[n-1].Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

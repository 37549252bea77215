package initcontainer

import (
	"net/netip"
	"strconv"
	"strings"
)

// Chains of ours, Kuma's names.
const (
	ChainInbound          = "KUMA_MESH_INBOUND"
	ChainInboundRedirect  = "KUMA_MESH_INBOUND_REDIRECT"
	ChainOutbound         = "KUMA_MESH_OUTBOUND"
	ChainOutboundRedirect = "KUMA_MESH_OUTBOUND_REDIRECT"
)

// ourChains are every chain this package may create; uninstall removes exactly these.
var ourChains = []string{ChainInbound, ChainInboundRedirect, ChainOutbound, ChainOutboundRedirect}

// Tables used, in the order scripts write them.
const (
	tableMangle = "mangle"
	tableRaw    = "raw"
	tableNat    = "nat"
)

var tables = []string{tableMangle, tableRaw, tableNat}

// Marker starts the comment of every rule of ours; rules in chains that are not ours are
// recognised by it alone.
const Marker = "meshinit: "

// Rule is one iptables rule of ours. Args are what follows "-A <chain>", in the order and spelling
// iptables-save prints them, so that rules read back from the kernel compare equal as text.
type Rule struct {
	Table   string   `json:"table"`
	Chain   string   `json:"chain"`
	Args    []string `json:"args"`
	Purpose string   `json:"purpose"`
}

// Spec is the rule's arguments as iptables-save prints them after "-A <chain> ".
func (r Rule) Spec() string {
	quoted := make([]string, len(r.Args))
	for i, a := range r.Args {
		quoted[i] = quote(a)
	}
	return strings.Join(quoted, " ")
}

// quote quotes an argument the way iptables-save does: only when it holds blanks or is empty.
func quote(arg string) string {
	if arg == "" || strings.ContainsAny(arg, " \t\"") {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(arg) + `"`
	}
	return arg
}

// match is a rule under construction. Its fields are the parts iptables-save prints in a fixed
// order (addresses, interface, protocol) whatever order they were given in; then come the further
// matches in the order given, the comment, and the target.
type match struct {
	src, dst netip.Prefix
	notDst   bool
	out      string
	proto    string
	sport    uint16
	dport    uint16
	extra    []string
	target   []string
}

func (m match) rule(table, chain, purpose string) Rule {
	var a []string
	if m.src.IsValid() {
		a = append(a, "-s", m.src.String())
	}
	if m.dst.IsValid() {
		if m.notDst {
			a = append(a, "!")
		}
		a = append(a, "-d", m.dst.String())
	}
	if m.out != "" {
		a = append(a, "-o", m.out)
	}
	if m.proto != "" {
		a = append(a, "-p", m.proto)
	}
	if m.sport != 0 || m.dport != 0 {
		a = append(a, "-m", m.proto) // iptables loads the protocol's match for ports, and prints it
		if m.sport != 0 {
			a = append(a, "--sport", strconv.Itoa(int(m.sport)))
		}
		if m.dport != 0 {
			a = append(a, "--dport", strconv.Itoa(int(m.dport)))
		}
	}
	a = append(a, m.extra...)
	a = append(a, "-m", "comment", "--comment", Marker+purpose)
	a = append(a, m.target...)
	return Rule{Table: table, Chain: chain, Args: a, Purpose: purpose}
}

func jump(chain string) []string { return []string{"-j", chain} }

var (
	targetReturn = []string{"-j", "RETURN"}
	targetDrop   = []string{"-j", "DROP"}
)

func redirectTo(port uint16) []string {
	return []string{"-j", "REDIRECT", "--to-ports", strconv.Itoa(int(port))}
}

func conntrackZone(zone int) []string { return []string{"-j", "CT", "--zone", strconv.Itoa(zone)} }

func ownerIs(uid string) []string    { return []string{"-m", "owner", "--uid-owner", uid} }
func ownerIsNot(uid string) []string { return []string{"-m", "owner", "!", "--uid-owner", uid} }

// logLimit rate-limits LOG rules, so that logging cannot flood the kernel log however much
// traffic flows.
var logLimit = []string{"-m", "limit", "--limit", "10/min"}

func logTo(prefix string) []string {
	return []string{"-j", "LOG", "--log-prefix", prefix, "--log-level", "7"}
}

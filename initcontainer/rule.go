package initcontainer

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/api"
)

// Chains of ours: in nat, Kuma's names; in raw and mangle, one per built-in chain it is reached
// from. Every rule of ours lies in a chain of ours, or jumps to one from a built-in chain, so that
// rules without comments are still known as ours.
const (
	ChainInbound          = "KUMA_MESH_INBOUND"
	ChainInboundRedirect  = "KUMA_MESH_INBOUND_REDIRECT"
	ChainOutbound         = "KUMA_MESH_OUTBOUND"
	ChainOutboundRedirect = "KUMA_MESH_OUTBOUND_REDIRECT"
	ChainVNet             = "KUMA_MESH_VNET"
	ChainPrerouting       = "KUMA_MESH_PREROUTING"
	ChainOutput           = "KUMA_MESH_OUTPUT"
)

// ourChains are every chain this package may create; uninstall removes exactly these.
var ourChains = []string{ChainInbound, ChainInboundRedirect, ChainOutbound, ChainOutboundRedirect, ChainVNet, ChainPrerouting, ChainOutput}

// ourRule reports whether a rule of chain, as iptables-save prints it after "-A <chain> ", is ours:
// it is in a chain of ours, jumps to one, or bears our marker (rules of earlier versions, which
// lay in built-in chains).
func ourRule(chain, spec string) bool {
	if slices.Contains(ourChains, chain) || strings.Contains(spec, `--comment "`+Marker) {
		return true
	}
	// iptables-save prints the target last.
	return slices.ContainsFunc(ourChains, func(c string) bool { return spec == "-j "+c || strings.HasSuffix(spec, " -j "+c) })
}

// Tables used, in the order scripts write them.
const (
	tableMangle = "mangle"
	tableRaw    = "raw"
	tableNat    = "nat"
)

var tables = []string{tableMangle, tableRaw, tableNat}

// Marker starts the comment of every rule of ours, unless comments.disabled says rules carry none.
const Marker = "meshinit: "

// Rule is one iptables rule of ours. Args are what follows "-A <chain>", in the order and spelling
// iptables-save prints them, so that rules read back from the kernel compare equal as text.
type Rule struct {
	Table   string   `json:"table"`
	Chain   string   `json:"chain"`
	Args    []string `json:"args"`
	Purpose string   `json:"purpose"`
	// Appended is for a rule in a built-in chain that goes after the rules of others there, rather
	// than before them.
	Appended bool `json:"appended,omitempty"`
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
	in, out  string
	proto    string
	sport    uint16
	dport    uint16
	extra    []string
	target   []string
}

// rule makes the rule, with our marker and its purpose as its comment unless comment is false.
func (m match) rule(table, chain, purpose string, comment bool) Rule {
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
	if m.in != "" {
		a = append(a, "-i", m.in)
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
	if comment {
		a = append(a, "-m", "comment", "--comment", Marker+purpose)
	}
	a = append(a, m.target...)
	return Rule{Table: table, Chain: chain, Args: a, Purpose: purpose}
}

func jump(chain string) []string { return []string{"-j", chain} }

var (
	targetReturn = []string{"-j", "RETURN"}
	targetAccept = []string{"-j", "ACCEPT"}
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

// logTo logs with a prefix at a kernel log level; iptables-save leaves out level 4, its default.
func logTo(prefix string, level api.LogLevel) []string {
	target := []string{"-j", "LOG", "--log-prefix", prefix}
	if level != 4 {
		target = append(target, "--log-level", level.String())
	}
	return target
}

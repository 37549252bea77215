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

// ourChains are every chain of rules this package may create; uninstall removes exactly these, and
// the markers.
var ourChains = []string{ChainInbound, ChainInboundRedirect, ChainOutbound, ChainOutboundRedirect, ChainVNet, ChainPrerouting, ChainOutput}

// Markers are empty chains of ours by which the iptables backend remembers, from install to
// uninstall, the tables (KUMA_MESH_MADE_TABLE) and built-in chains (KUMA_MESH_MADE_<CHAIN>) of
// iptables-nft that install made, so that uninstall removes them once nothing else is in them.
const (
	markerPrefix = "KUMA_MESH_MADE_"
	markerTable  = markerPrefix + "TABLE"
)

// isOurChain reports whether a chain is one of ours, a marker included.
func isOurChain(name string) bool {
	return slices.Contains(ourChains, name) || strings.HasPrefix(name, markerPrefix)
}

// ourRule reports whether a rule of chain, as iptables-save prints it after "-A <chain> ", is ours:
// it is in a chain of ours, jumps to one, or bears our marker (rules of earlier versions, which
// lay in built-in chains).
func ourRule(chain, spec string) bool {
	if isOurChain(chain) || strings.Contains(spec, `--comment "`+Marker) {
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
	// Comment is the comment the rule carries, empty when comments are disabled; Args hold it too.
	Comment string `json:"-"`
	match   match
}

// Spec is the rule's arguments as iptables-save prints them after "-A <chain> ".
func (r Rule) Spec() string {
	quoted := make([]string, len(r.Args))
	for i, a := range r.Args {
		quoted[i] = quote(a)
	}
	return strings.Join(quoted, " ")
}

var quoteEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// quote quotes an argument the way iptables-save does: only when it holds blanks or is empty.
func quote(arg string) string {
	if arg == "" || strings.ContainsAny(arg, " \t\"") {
		return `"` + quoteEscaper.Replace(arg) + `"`
	}
	return arg
}

// match is what a rule matches and does, backend-neutral: iptables arguments and nftables
// expressions are both made from it. Its fields are the parts iptables-save prints in a fixed order
// (addresses, interface, protocol, ports); then come the further matches, the comment, and the
// target.
type match struct {
	src, dst netip.Prefix
	notDst   bool
	// in and out are interface names; a trailing + matches every name with that prefix.
	in, out string
	proto   string // tcp, udp, or "" for any
	sport   uint16
	dport   uint16
	// dports is one multiport chunk (see multiports).
	dports api.PortRanges
	// owner is the UIDs whose sockets send the packet.
	owner     *api.UIDRange
	ctInvalid bool
	// limited rate-limits the rule, so that logging cannot flood the kernel log however much
	// traffic flows.
	limited bool
	target  action
}

// action is what a rule does with the packets it matches.
type action struct {
	verdict string // one of the verdicts below
	chain   string // jump
	port    uint16 // redirect
	zone    uint16 // ct
	prefix  string // log
	level   api.LogLevel
}

// Verdicts of an action.
const (
	verdictJump     = "jump"
	verdictReturn   = "RETURN"
	verdictAccept   = "ACCEPT"
	verdictDrop     = "DROP"
	verdictRedirect = "REDIRECT"
	verdictCT       = "CT"
	verdictLog      = "LOG"
)

// logLimit is the rate of LOG rules: 10 a minute, burst 5, as iptables' limit match defaults.
const logLimit = "10/min"

// rule makes the rule, with our marker and its purpose as its comment unless comment is false.
func (m match) rule(table, chain, purpose string, comment bool) Rule {
	r := Rule{Table: table, Chain: chain, Args: m.args(purpose, comment), Purpose: purpose, match: m}
	if comment {
		r.Comment = Marker + purpose
	}
	return r
}

// args are the rule's iptables arguments, in the order and spelling iptables-save prints them.
func (m match) args(purpose string, comment bool) []string {
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
	if len(m.dports) > 0 {
		a = append(a, "-m", "multiport", "--dports", multiportText(m.dports))
	}
	if m.owner != nil {
		a = append(a, "-m", "owner", "--uid-owner", m.owner.String())
	}
	if m.ctInvalid {
		a = append(a, "-m", "conntrack", "--ctstate", "INVALID")
	}
	if m.limited {
		a = append(a, "-m", "limit", "--limit", logLimit)
	}
	if comment {
		a = append(a, "-m", "comment", "--comment", Marker+purpose)
	}
	return append(a, m.target.args()...)
}

func (t action) args() []string {
	switch t.verdict {
	case verdictJump:
		return []string{"-j", t.chain}
	case verdictRedirect:
		return []string{"-j", "REDIRECT", "--to-ports", strconv.Itoa(int(t.port))}
	case verdictCT:
		return []string{"-j", "CT", "--zone", strconv.Itoa(int(t.zone))}
	case verdictLog:
		// iptables-save leaves out level 4, its default.
		a := []string{"-j", "LOG", "--log-prefix", t.prefix}
		if t.level != 4 {
			a = append(a, "--log-level", t.level.String())
		}
		return a
	}
	return []string{"-j", t.verdict}
}

func jump(chain string) action { return action{verdict: verdictJump, chain: chain} }

var (
	targetReturn = action{verdict: verdictReturn}
	targetAccept = action{verdict: verdictAccept}
	targetDrop   = action{verdict: verdictDrop}
)

func redirectTo(port uint16) action { return action{verdict: verdictRedirect, port: port} }

func conntrackZone(zone uint16) action { return action{verdict: verdictCT, zone: zone} }

func logTo(prefix string, level api.LogLevel) action {
	return action{verdict: verdictLog, prefix: prefix, level: level}
}

func uids(r api.UIDRange) *api.UIDRange { return &r }

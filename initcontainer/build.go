package initcontainer

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/api"
)

// Host is what the rules depend on beyond the configuration, read from the machine by the caller.
type Host struct {
	// ProxyUID is the kumaDPUser resolved to a UID.
	ProxyUID uint32
	// Nameservers are those of resolv.conf; DNS to them is redirected unless all DNS is.
	Nameservers []netip.Addr
}

// Chain is a chain of ours in a table.
type Chain struct {
	Table string `json:"table"`
	Name  string `json:"name"`
}

// Ruleset is the desired state of ours for one family: the chains to create and every rule, each
// chain's rules in order. Rules in built-in chains go first in those chains, before the rules of
// others, unless they are Appended.
type Ruleset struct {
	Family Family  `json:"-"`
	Chains []Chain `json:"chains"`
	Rules  []Rule  `json:"rules"`
}

// Conntrack zones that keep the proxy's DNS flows apart from the applications' redirected ones:
// without them an upstream query of the proxy and an application's query with the same ports
// would share a conntrack entry, and answers would reach the wrong socket.
const (
	zoneProxyUpstream uint16 = 1
	zoneApplication   uint16 = 2
)

// maxMultiport is how many ports one multiport match holds; a range takes two.
const maxMultiport = 15

// Families returns the families whose traffic the configuration redirects.
func Families(cfg *api.TransparentProxyConfig) []Family {
	var out []Family
	if cfg.Family().IPv4() {
		out = append(out, IPv4)
	}
	if cfg.Family().IPv6() {
		out = append(out, IPv6)
	}
	return out
}

// Build returns the rules of one family for a valid configuration.
func Build(cfg *api.TransparentProxyConfig, host Host, family Family) Ruleset {
	// Room for a family's rules in the usual configurations (about twenty): a Rule is large, and
	// growing the slice from nothing copied them four times over.
	b := builder{cfg: cfg, host: host, family: family, uid: api.UIDRange{First: host.ProxyUID, Last: host.ProxyUID},
		rules: make([]Rule, 0, 32)}
	b.mangle()
	b.raw()
	b.nat()
	return Ruleset{Family: family, Chains: b.chains, Rules: b.rules}
}

type builder struct {
	cfg    *api.TransparentProxyConfig
	host   Host
	family Family
	uid    api.UIDRange
	chains []Chain
	rules  []Rule
}

// add adds a rule at the end of a chain of ours, or to a built-in chain among the rules of ours
// that come before the rules of others there.
func (b *builder) add(table, chain, purpose string, m match) {
	b.rules = append(b.rules, m.rule(table, chain, purpose, !b.cfg.Comments.Disabled))
}

// addFirstOrLast adds a rule to a built-in chain before the rules of others there when first,
// after them otherwise.
func (b *builder) addFirstOrLast(first bool, table, chain, purpose string, m match) {
	r := m.rule(table, chain, purpose, !b.cfg.Comments.Disabled)
	r.Appended = !first
	b.rules = append(b.rules, r)
}

func (b *builder) chain(table, name string) {
	b.chains = append(b.chains, Chain{Table: table, Name: name})
}

// hook creates a chain of ours in table filled by rules, reached from the built-in chain builtin by
// a jump of m on top; nothing at all when rules adds none.
func (b *builder) hook(table, builtin, chain, purpose string, m match, rules func()) {
	before := len(b.rules)
	rules()
	if len(b.rules) == before {
		return
	}
	b.chain(table, chain)
	m.target = jump(chain)
	b.add(table, builtin, purpose, m)
}

func (b *builder) dns() bool { return b.cfg.Redirect.DNS.Enabled }

// nameservers returns the family's nameservers as host prefixes; an empty slice and all==true
// when every DNS destination is redirected.
func (b *builder) nameservers() (prefixes []netip.Prefix, all bool) {
	if b.cfg.Redirect.DNS.CaptureAll {
		return []netip.Prefix{{}}, true
	}
	for _, ns := range b.host.Nameservers {
		if ns = ns.Unmap(); b.family.contains(ns) {
			prefixes = append(prefixes, netip.PrefixFrom(ns, ns.BitLen()))
		}
	}
	return prefixes, false
}

// vnetworks are the family's virtual networks.
func (b *builder) vnetworks() []api.VNetwork {
	var out []api.VNetwork
	for _, n := range b.cfg.Redirect.VNet.Networks {
		if b.family.contains(n.CIDR.Addr()) {
			out = append(out, n)
		}
	}
	return out
}

// vnetInterfaces are the interfaces of the family's virtual networks, each once.
func (b *builder) vnetInterfaces() []string {
	var out []string
	for _, n := range b.vnetworks() {
		if !slices.Contains(out, n.Interface) {
			out = append(out, n.Interface)
		}
	}
	return out
}

func (b *builder) mangle() {
	b.hook(tableMangle, "PREROUTING", ChainPrerouting, "arriving packets to "+ChainPrerouting, match{}, func() {
		if b.cfg.DropInvalidPackets {
			b.add(tableMangle, ChainPrerouting, "drop packets conntrack finds invalid", match{
				ctInvalid: true, target: targetDrop})
		}
	})
}

func (b *builder) raw() {
	if !b.dns() || b.cfg.Redirect.DNS.SkipConntrackZoneSplit {
		return
	}
	servers, _ := b.nameservers()
	// CT sets a packet's zone only once, so the proxy's own flows are claimed first.
	b.hook(tableRaw, "OUTPUT", ChainOutput, "outbound UDP to "+ChainOutput, match{proto: "udp"}, func() {
		b.add(tableRaw, ChainOutput, "upstream DNS queries of the proxy in their own conntrack zone", match{
			proto: "udp", dport: 53, owner: uids(b.uid), target: conntrackZone(zoneProxyUpstream)})
		b.add(tableRaw, ChainOutput, "DNS answers of the proxy in the conntrack zone of the applications", match{
			proto: "udp", sport: b.cfg.Redirect.DNS.Port, owner: uids(b.uid), target: conntrackZone(zoneApplication)})
		for _, ns := range servers {
			b.add(tableRaw, ChainOutput, "DNS queries of the applications in their own conntrack zone", match{
				dst: ns, proto: "udp", dport: 53, target: conntrackZone(zoneApplication)})
		}
	})
	b.hook(tableRaw, "PREROUTING", ChainPrerouting, "arriving UDP to "+ChainPrerouting, match{proto: "udp"}, func() {
		// The virtual networks' DNS is the sidecar's to answer, as the applications' is.
		for _, iface := range b.vnetInterfaces() {
			b.add(tableRaw, ChainPrerouting, "DNS queries of a virtual network in the conntrack zone of the applications", match{
				in: iface, proto: "udp", dport: 53, target: conntrackZone(zoneApplication)})
		}
		for _, ns := range servers {
			b.add(tableRaw, ChainPrerouting, "upstream DNS answers in the conntrack zone of the proxy", match{
				src: ns, proto: "udp", sport: 53, target: conntrackZone(zoneProxyUpstream)})
		}
	})
}

func (b *builder) nat() {
	cfg := b.cfg
	in, out := cfg.Redirect.Inbound, cfg.Redirect.Outbound
	if in.Enabled {
		b.chain(tableNat, ChainInbound)
		b.chain(tableNat, ChainInboundRedirect)
	}
	// Outbound disabled, only DNS goes through the outbound chain.
	if out.Enabled || b.dns() {
		b.chain(tableNat, ChainOutbound)
	}
	if out.Enabled {
		b.chain(tableNat, ChainOutboundRedirect)
	}

	b.vnet()
	if in.Enabled {
		b.addFirstOrLast(in.InsertRedirectInsteadOfAppend, tableNat, "PREROUTING", "inbound TCP to "+ChainInbound,
			match{proto: "tcp", target: jump(ChainInbound)})
	}
	if out.Enabled {
		b.addFirstOrLast(out.InsertRedirectInsteadOfAppend, tableNat, "OUTPUT", "outbound TCP to "+ChainOutbound,
			match{proto: "tcp", target: jump(ChainOutbound)})
	}
	if b.dns() {
		b.add(tableNat, "OUTPUT", "outbound DNS to "+ChainOutbound, match{proto: "udp", dport: 53, target: jump(ChainOutbound)})
	}

	if in.Enabled {
		b.inbound()
	}
	if out.Enabled || b.dns() {
		b.outbound()
	}

	if in.Enabled {
		if cfg.Log.Enabled {
			b.add(tableNat, ChainInboundRedirect, "log inbound redirects", match{proto: "tcp", limited: true, target: logTo("meshinit inbound: ", cfg.Log.Level)})
		}
		b.add(tableNat, ChainInboundRedirect, "inbound TCP to the sidecar", match{proto: "tcp", target: redirectTo(in.Port)})
	}
	if out.Enabled {
		if cfg.Log.Enabled {
			b.add(tableNat, ChainOutboundRedirect, "log outbound redirects", match{proto: "tcp", limited: true, target: logTo("meshinit outbound: ", cfg.Log.Level)})
		}
		b.add(tableNat, ChainOutboundRedirect, "outbound TCP to the sidecar", match{proto: "tcp", target: redirectTo(out.Port)})
	}
}

func (b *builder) inbound() {
	in := b.cfg.Redirect.Inbound
	b.addressExclusions(ChainInbound, "inbound from an excluded address", in.ExcludePortsForIPs, targetReturn, func(m *match, p netip.Prefix) { m.src = p })
	b.ports(ChainInbound, "inbound", in.IncludePorts, b.cfg.InboundExcluded(), targetReturn, ChainInboundRedirect)
}

func (b *builder) outbound() {
	cfg := b.cfg
	out := cfg.Redirect.Outbound
	var protocols []string // those that reach the chain
	if out.Enabled {
		protocols = append(protocols, "tcp")
	}
	if b.dns() {
		protocols = append(protocols, "udp")
	}

	for _, e := range out.ExcludePortsForUIDs {
		for _, proto := range protocols {
			if e.Protocol != api.ProtocolAll && string(e.Protocol) != proto {
				continue
			}
			chunks := multiports(e.Ports)
			if len(chunks) == 0 {
				chunks = []api.PortRanges{nil}
			}
			for _, ports := range chunks {
				b.add(tableNat, ChainOutbound, fmt.Sprintf("outbound %s of UIDs %s excluded", proto, e.UIDs), match{
					proto: proto, dports: ports, owner: uids(e.UIDs), target: targetReturn})
			}
		}
	}
	// DNS comes before the loopback rules, since resolv.conf may name a local resolver such as
	// 127.0.0.53, and before the exclusions: an operator who turns the sidecar's DNS on wants it
	// used even where the nameserver's address is excluded. Per-UID exclusions, which can name
	// UDP port 53 explicitly, come first.
	if b.dns() {
		b.add(tableNat, ChainOutbound, "DNS of the proxy is not redirected", match{
			proto: "udp", dport: 53, owner: uids(b.uid), target: targetReturn})
		servers, all := b.nameservers()
		if cfg.Log.Enabled && len(servers) > 0 {
			b.add(tableNat, ChainOutbound, "log DNS redirects", match{proto: "udp", dport: 53, limited: true, target: logTo("meshinit dns: ", cfg.Log.Level)})
		}
		purpose := "DNS to the nameservers goes to the sidecar DNS"
		if all {
			purpose = "all DNS goes to the sidecar DNS"
		}
		for _, ns := range servers {
			b.add(tableNat, ChainOutbound, purpose, match{dst: ns, proto: "udp", dport: 53, target: redirectTo(cfg.Redirect.DNS.Port)})
		}
	}
	if !out.Enabled {
		return
	}

	loopback := b.family.Loopback()
	if cfg.Redirect.Inbound.Enabled {
		// Envoy forwards inbound traffic to the application, and kuma-dp's probe proxy connects to
		// it, from this source, as the proxy's user: it must reach the application, not come back
		// to the inbound listener by the hairpin rule below.
		b.add(tableNat, ChainOutbound, "inbound traffic the proxy forwards to the application", match{
			src: b.family.passthroughSource(), out: "lo", target: targetReturn})
		b.add(tableNat, ChainOutbound, "proxy traffic to the pod address goes inbound", match{
			dst: loopback, notDst: true, out: "lo", proto: "tcp", owner: uids(b.uid), target: jump(ChainInboundRedirect)})
	}
	// Kuma matches the other users here (-m owner ! --uid-owner), which also matches packets of no
	// socket at all; the proxy's own are not redirected by the next rule either way. nftables cannot
	// match the absence of a socket, so both backends match the interface alone: the same decisions.
	b.add(tableNat, ChainOutbound, "other loopback traffic is not redirected", match{out: "lo", target: targetReturn})
	b.add(tableNat, ChainOutbound, "traffic of the proxy is not redirected", match{owner: uids(b.uid), target: targetReturn})
	b.add(tableNat, ChainOutbound, "localhost is not redirected", match{dst: loopback, target: targetReturn})
	b.addressExclusions(ChainOutbound, "outbound to an excluded address", out.ExcludePortsForIPs, targetReturn, func(m *match, p netip.Prefix) { m.dst = p })
	b.ports(ChainOutbound, "outbound", out.IncludePorts, cfg.OutboundExcluded(), targetReturn, ChainOutboundRedirect)
}

// vnet makes ChainVNet, which the traffic arriving from the virtual networks' interfaces goes
// through first. Their DNS goes to the sidecar's DNS. Their TCP within the network goes on, as
// arriving traffic, to the inbound rules; leaving it, it is the host's own outbound traffic, to the
// outbound address and port exclusions and then to the sidecar. What leaves the network and is not
// redirected is accepted here, so that the inbound rules do not take it for the host's own.
func (b *builder) vnet() {
	nets := b.vnetworks()
	if len(nets) == 0 {
		return
	}
	b.chain(tableNat, ChainVNet)
	// Before any rule of others, such as Docker's, can translate or forward it, as Kuma does.
	for _, iface := range b.vnetInterfaces() {
		b.add(tableNat, "PREROUTING", "traffic of a virtual network to "+ChainVNet, match{in: iface, target: jump(ChainVNet)})
	}
	if b.dns() {
		b.add(tableNat, ChainVNet, "DNS of the virtual networks goes to the sidecar DNS", match{
			proto: "udp", dport: 53, target: redirectTo(b.cfg.Redirect.DNS.Port)})
	}
	for _, n := range nets {
		b.add(tableNat, ChainVNet, "traffic within its virtual network goes on to the inbound rules", match{
			dst: n.CIDR.Masked(), in: n.Interface, target: targetReturn})
	}
	if out := b.cfg.Redirect.Outbound; out.Enabled {
		b.addressExclusions(ChainVNet, "outbound to an excluded address is not redirected", out.ExcludePortsForIPs, targetAccept, func(m *match, p netip.Prefix) { m.dst = p })
		b.ports(ChainVNet, "outbound", out.IncludePorts, b.cfg.OutboundExcluded(), targetAccept, ChainOutboundRedirect)
		if len(out.IncludePorts) == 0 {
			return // every TCP packet left is redirected
		}
	}
	b.add(tableNat, ChainVNet, "other TCP leaving a virtual network is not redirected", match{proto: "tcp", target: targetAccept})
}

// addressExclusions takes the traffic of the excluded addresses, matched by address, out of chain
// with skip.
func (b *builder) addressExclusions(chain, purpose string, ips api.CIDRs, skip action, address func(*match, netip.Prefix)) {
	for _, p := range b.familyCIDRs(ips) {
		m := match{target: skip}
		address(&m, p)
		b.add(tableNat, chain, purpose, m)
	}
}

// ports sends TCP from chain to the redirect chain: to the included ports when there are any,
// otherwise to any port but the excluded ones, which skip takes out of chain; Kuma ignores the
// excluded ports when ports are included.
func (b *builder) ports(chain, flow string, include api.Ports, exclude api.PortRanges, skip action, redirect string) {
	if len(include) > 0 {
		for _, chunk := range multiports(singlePorts(include)) {
			b.add(tableNat, chain, flow+" TCP to included ports to "+redirect, match{proto: "tcp", dports: chunk, target: jump(redirect)})
		}
		return
	}
	for _, chunk := range multiports(exclude) {
		b.add(tableNat, chain, flow+" to excluded ports", match{proto: "tcp", dports: chunk, target: skip})
	}
	b.add(tableNat, chain, flow+" TCP to "+redirect, match{proto: "tcp", target: jump(redirect)})
}

func singlePorts(ports api.Ports) api.PortRanges {
	out := make(api.PortRanges, len(ports))
	for i, p := range ports {
		out[i] = api.PortRange{First: p, Last: p}
	}
	return out
}

// familyCIDRs returns the masked entries of the family.
func (b *builder) familyCIDRs(cidrs api.CIDRs) api.CIDRs {
	if b.family == IPv6 {
		return cidrs.IPv6()
	}
	return cidrs.IPv4()
}

// multiports splits port ranges into chunks that one multiport match holds: at most maxMultiport
// ports each, a range counting two. nftables could hold them all in one set; it takes the same
// chunks, so that both backends install one rule list.
func multiports(ranges api.PortRanges) []api.PortRanges {
	var chunks []api.PortRanges
	var cur api.PortRanges
	used := 0
	for _, r := range ranges {
		cost := 1
		if r.First != r.Last {
			cost = 2
		}
		if used+cost > maxMultiport {
			chunks = append(chunks, cur)
			cur, used = nil, 0
		}
		cur = append(cur, r)
		used += cost
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	return chunks
}

// multiportText spells a chunk as iptables' multiport match does: "22,8000:8100".
func multiportText(chunk api.PortRanges) string {
	parts := make([]string, len(chunk))
	for i, r := range chunk {
		parts[i] = strconv.Itoa(int(r.First))
		if r.First != r.Last {
			parts[i] = fmt.Sprintf("%d:%d", r.First, r.Last)
		}
	}
	return strings.Join(parts, ",")
}

package initcontainer

import (
	"fmt"
	"net/netip"
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
// chain's rules in order. Rules in built-in chains go first in those chains.
type Ruleset struct {
	Family Family  `json:"-"`
	Chains []Chain `json:"chains"`
	Rules  []Rule  `json:"rules"`
}

// Conntrack zones that keep the proxy's DNS flows apart from the applications' redirected ones:
// without them an upstream query of the proxy and an application's query with the same ports
// would share a conntrack entry, and answers would reach the wrong socket.
const (
	zoneProxyUpstream = 1
	zoneApplication   = 2
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
	b := builder{cfg: cfg, host: host, family: family, uid: strconv.FormatUint(uint64(host.ProxyUID), 10)}
	b.mangle()
	b.raw()
	b.nat()
	return Ruleset{Family: family, Chains: b.chains, Rules: b.rules}
}

type builder struct {
	cfg    *api.TransparentProxyConfig
	host   Host
	family Family
	uid    string
	chains []Chain
	rules  []Rule
}

func (b *builder) add(table, chain, purpose string, m match) {
	b.rules = append(b.rules, m.rule(table, chain, purpose))
}

func (b *builder) chain(table, name string) {
	b.chains = append(b.chains, Chain{Table: table, Name: name})
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

func (b *builder) mangle() {
	if b.cfg.DropInvalidPackets {
		b.add(tableMangle, "PREROUTING", "drop packets conntrack finds invalid", match{
			extra: []string{"-m", "conntrack", "--ctstate", "INVALID"}, target: targetDrop})
	}
}

func (b *builder) raw() {
	if !b.dns() || b.cfg.Redirect.DNS.SkipConntrackZoneSplit {
		return
	}
	servers, _ := b.nameservers()
	// CT sets a packet's zone only once, so the proxy's own flows are claimed first.
	b.add(tableRaw, "OUTPUT", "upstream DNS queries of the proxy in their own conntrack zone", match{
		proto: "udp", dport: 53, extra: ownerIs(b.uid), target: conntrackZone(zoneProxyUpstream)})
	b.add(tableRaw, "OUTPUT", "DNS answers of the proxy in the conntrack zone of the applications", match{
		proto: "udp", sport: b.cfg.Redirect.DNS.Port, extra: ownerIs(b.uid), target: conntrackZone(zoneApplication)})
	for _, ns := range servers {
		b.add(tableRaw, "OUTPUT", "DNS queries of the applications in their own conntrack zone", match{
			dst: ns, proto: "udp", dport: 53, target: conntrackZone(zoneApplication)})
	}
	for _, ns := range servers {
		b.add(tableRaw, "PREROUTING", "upstream DNS answers in the conntrack zone of the proxy", match{
			src: ns, proto: "udp", sport: 53, target: conntrackZone(zoneProxyUpstream)})
	}
}

func (b *builder) nat() {
	in := b.cfg.Redirect.Inbound
	out := b.cfg.Redirect.Outbound
	if in.Enabled {
		b.chain(tableNat, ChainInbound)
		b.chain(tableNat, ChainInboundRedirect)
	}
	b.chain(tableNat, ChainOutbound)
	b.chain(tableNat, ChainOutboundRedirect)

	if in.Enabled {
		b.add(tableNat, "PREROUTING", "inbound TCP to "+ChainInbound, match{proto: "tcp", target: jump(ChainInbound)})
	}
	b.add(tableNat, "OUTPUT", "outbound TCP to "+ChainOutbound, match{proto: "tcp", target: jump(ChainOutbound)})
	if b.dns() {
		b.add(tableNat, "OUTPUT", "outbound DNS to "+ChainOutbound, match{proto: "udp", dport: 53, target: jump(ChainOutbound)})
	}

	if in.Enabled {
		b.inbound()
	}
	b.outbound()

	if in.Enabled {
		if b.cfg.Log.Enabled {
			b.add(tableNat, ChainInboundRedirect, "log inbound redirects", match{proto: "tcp", extra: logLimit, target: logTo("meshinit inbound: ")})
		}
		b.add(tableNat, ChainInboundRedirect, "inbound TCP to the sidecar", match{proto: "tcp", target: redirectTo(in.Port)})
	}
	if b.cfg.Log.Enabled {
		b.add(tableNat, ChainOutboundRedirect, "log outbound redirects", match{proto: "tcp", extra: logLimit, target: logTo("meshinit outbound: ")})
	}
	b.add(tableNat, ChainOutboundRedirect, "outbound TCP to the sidecar", match{proto: "tcp", target: redirectTo(out.Port)})
}

func (b *builder) inbound() {
	in := b.cfg.Redirect.Inbound
	b.exclusions(ChainInbound, "inbound from an excluded address", "inbound to excluded ports", in.ExcludePortsForIPs, b.cfg.InboundExcluded(),
		func(m *match, p netip.Prefix) { m.src = p })
	b.add(tableNat, ChainInbound, "inbound TCP to "+ChainInboundRedirect, match{proto: "tcp", target: jump(ChainInboundRedirect)})
}

func (b *builder) outbound() {
	cfg := b.cfg
	out := cfg.Redirect.Outbound
	protocols := []string{"tcp"}
	if b.dns() { // only DNS brings UDP into the chain
		protocols = append(protocols, "udp")
	}

	for _, e := range out.ExcludePortsForUIDs {
		for _, proto := range protocols {
			if e.Protocol != api.ProtocolAll && string(e.Protocol) != proto {
				continue
			}
			chunks := multiports(e.Ports)
			if len(chunks) == 0 {
				chunks = []string{""}
			}
			for _, ports := range chunks {
				var extra []string
				if ports != "" {
					extra = dports(ports)
				}
				extra = append(extra, ownerIs(e.UIDs.String())...)
				b.add(tableNat, ChainOutbound, fmt.Sprintf("outbound %s of UIDs %s excluded", proto, e.UIDs), match{
					proto: proto, extra: extra, target: targetReturn})
			}
		}
	}
	// DNS comes before the loopback rules, since resolv.conf may name a local resolver such as
	// 127.0.0.53, and before the exclusions: an operator who turns the sidecar's DNS on wants it
	// used even where the nameserver's address is excluded. Per-UID exclusions, which can name
	// UDP port 53 explicitly, come first.
	if b.dns() {
		b.add(tableNat, ChainOutbound, "DNS of the proxy is not redirected", match{
			proto: "udp", dport: 53, extra: ownerIs(b.uid), target: targetReturn})
		servers, all := b.nameservers()
		if cfg.Log.Enabled && len(servers) > 0 {
			b.add(tableNat, ChainOutbound, "log DNS redirects", match{proto: "udp", dport: 53, extra: logLimit, target: logTo("meshinit dns: ")})
		}
		purpose := "DNS to the nameservers goes to the sidecar DNS"
		if all {
			purpose = "all DNS goes to the sidecar DNS"
		}
		for _, ns := range servers {
			b.add(tableNat, ChainOutbound, purpose, match{dst: ns, proto: "udp", dport: 53, target: redirectTo(cfg.Redirect.DNS.Port)})
		}
	}

	loopback := b.family.Loopback()
	if cfg.Redirect.Inbound.Enabled {
		b.add(tableNat, ChainOutbound, "inbound traffic the proxy forwards to the application", match{
			src: b.family.passthroughSource(), out: "lo", target: targetReturn})
		b.add(tableNat, ChainOutbound, "proxy traffic to the pod address goes inbound", match{
			dst: loopback, notDst: true, out: "lo", proto: "tcp", extra: ownerIs(b.uid), target: jump(ChainInboundRedirect)})
	}
	b.add(tableNat, ChainOutbound, "loopback traffic of other users is not redirected", match{
		out: "lo", extra: ownerIsNot(b.uid), target: targetReturn})
	b.add(tableNat, ChainOutbound, "traffic of the proxy is not redirected", match{extra: ownerIs(b.uid), target: targetReturn})
	b.add(tableNat, ChainOutbound, "localhost is not redirected", match{dst: loopback, target: targetReturn})
	b.exclusions(ChainOutbound, "outbound to an excluded address", "outbound to excluded ports", out.ExcludePortsForIPs, cfg.OutboundExcluded(),
		func(m *match, p netip.Prefix) { m.dst = p })
	b.add(tableNat, ChainOutbound, "outbound TCP to "+ChainOutboundRedirect, match{proto: "tcp", target: jump(ChainOutboundRedirect)})
}

// exclusions returns from chain the traffic of the excluded addresses (matched by address) and
// to the excluded TCP ports.
func (b *builder) exclusions(chain, ipPurpose, portPurpose string, ips api.CIDRs, ports api.PortRanges, address func(*match, netip.Prefix)) {
	for _, p := range b.familyCIDRs(ips) {
		m := match{target: targetReturn}
		address(&m, p)
		b.add(tableNat, chain, ipPurpose, m)
	}
	for _, chunk := range multiports(ports) {
		b.add(tableNat, chain, portPurpose, match{proto: "tcp", extra: dports(chunk), target: targetReturn})
	}
}

func dports(multiport string) []string { return []string{"-m", "multiport", "--dports", multiport} }

// familyCIDRs returns the masked entries of the family.
func (b *builder) familyCIDRs(cidrs api.CIDRs) api.CIDRs {
	if b.family == IPv6 {
		return cidrs.IPv6()
	}
	return cidrs.IPv4()
}

// multiports splits port ranges into multiport match values of at most maxMultiport ports each,
// a range counting two, in iptables' spelling ("22,8000:8100").
func multiports(ranges api.PortRanges) []string {
	var chunks []string
	var cur []string
	used := 0
	for _, r := range ranges {
		cost, text := 1, strconv.Itoa(int(r.First))
		if r.First != r.Last {
			cost, text = 2, fmt.Sprintf("%d:%d", r.First, r.Last)
		}
		if used+cost > maxMultiport {
			chunks = append(chunks, strings.Join(cur, ","))
			cur, used = nil, 0
		}
		cur = append(cur, text)
		used += cost
	}
	if len(cur) > 0 {
		chunks = append(chunks, strings.Join(cur, ","))
	}
	return chunks
}

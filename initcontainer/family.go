package initcontainer

import "net/netip"

// Family is an IP family, each with its own iptables tables and tools.
type Family int

const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "ipv6"
	}
	return "ipv4"
}

// Loopback is the family's localhost address, as a host prefix.
func (f Family) Loopback() netip.Prefix {
	if f == IPv6 {
		return netip.MustParsePrefix("::1/128")
	}
	return netip.MustParsePrefix("127.0.0.1/32")
}

// passthroughSource is the address Envoy uses as the source when it forwards inbound traffic to the
// application; that traffic leaves on lo as the proxy's UID and must not be hairpinned back.
func (f Family) passthroughSource() netip.Prefix {
	if f == IPv6 {
		return netip.MustParsePrefix("::6/128")
	}
	return netip.MustParsePrefix("127.0.0.6/32")
}

// command is the family's name of an iptables tool: iptables-restore or ip6tables-restore.
func (f Family) command(tool string) string {
	if f == IPv6 {
		return "ip6tables-" + tool
	}
	return "iptables-" + tool
}

func (f Family) contains(a netip.Addr) bool { return a.Unmap().Is4() == (f == IPv4) }

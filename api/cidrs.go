package api

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// FormCIDRs is the accepted form of address lists.
const FormCIDRs = "comma-separated IPv4/IPv6 addresses or CIDRs, e.g. 10.0.0.0/8,fd00::1"

// CIDRs is a list of IPv4 and IPv6 prefixes in the order given; a bare address is a full-length
// prefix. Host bits are kept as written (rules use the masked network) so the list formats back
// the way it was given; IPv4-mapped IPv6 addresses (::ffff:10.0.0.1) are IPv4 (see unmapped).
type CIDRs []netip.Prefix

// String formats the list in the syntax ParseCIDRs reads, bare addresses without a length.
func (c CIDRs) String() string {
	parts := make([]string, len(c))
	for i, p := range c {
		parts[i] = formatPrefix(p)
	}
	return strings.Join(parts, ",")
}

func formatPrefix(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// unmapped turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.1, ::ffff:10.0.0.0/104) into the IPv4
// prefix it stands for. A socket that connects to such an address sends IPv4 packets to the IPv4
// address, so only an IPv4 rule can match its traffic; Kuma, too, counts it as IPv4 (its To4 is
// not nil), but passes the text to iptables, which refuses it: the document is written with the
// IPv4 prefix. Shorter prefixes reach beyond the mapped addresses and stay IPv6.
func unmapped(p netip.Prefix) netip.Prefix {
	if !p.Addr().Is4In6() || p.Bits() < 96 {
		return p
	}
	return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
}

// IPv4 returns the IPv4 entries, masked.
func (c CIDRs) IPv4() CIDRs { return c.family(true) }

// IPv6 returns the IPv6 entries, masked.
func (c CIDRs) IPv6() CIDRs { return c.family(false) }

func (c CIDRs) family(v4 bool) CIDRs {
	var out CIDRs
	for _, p := range c {
		if p = unmapped(p); p.Addr().Is4() == v4 {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Warnings lists entries that are valid but likely mistakes: host bits set, repeats, or IPv4
// addresses written as IPv6 ones.
func (c CIDRs) Warnings() []string {
	var out []string
	for i, p := range c {
		if u := unmapped(p); u != p {
			out = append(out, fmt.Sprintf("%s is an IPv4-mapped IPv6 address, whose traffic is IPv4: it is excluded in the IPv4 rules, as %s",
				p.Addr().String()+bitsText(p), formatPrefix(u)))
			p = u
		}
		if p.Masked() != p {
			out = append(out, fmt.Sprintf("%s has host bits set; it means %s", p, formatPrefix(p.Masked())))
		}
		for _, earlier := range c[:i] {
			if unmapped(earlier).Masked().Overlaps(p.Masked()) {
				out = append(out, fmt.Sprintf("%s overlaps %s", formatPrefix(p), formatPrefix(earlier)))
				break
			}
		}
	}
	return out
}

// ParseCIDRs parses comma-separated IPv4/IPv6 addresses and CIDRs. Blanks around entries are
// ignored; an empty value is an empty list.
func ParseCIDRs(s string) (CIDRs, error) {
	cidrs, err := parseList(s, ",", FormCIDRs, whole(parseCIDR))
	return cidrs, err
}

func parseCIDR(token string) (netip.Prefix, string) {
	if strings.Contains(token, "%") {
		return netip.Prefix{}, "has an IPv6 zone, which rules cannot match"
	}
	if strings.Contains(token, "/") {
		p, err := netip.ParsePrefix(token)
		if err != nil {
			return netip.Prefix{}, "is not a CIDR"
		}
		return p, ""
	}
	addr, err := netip.ParseAddr(token)
	if err != nil {
		return netip.Prefix{}, "is not an IP address"
	}
	return netip.PrefixFrom(addr, addr.BitLen()), ""
}

// bitsText is a prefix's length as written after its address, none for a single address.
func bitsText(p netip.Prefix) string {
	if p.IsSingleIP() {
		return ""
	}
	return "/" + strconv.Itoa(p.Bits())
}

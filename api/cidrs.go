package api

import (
	"fmt"
	"net/netip"
	"strings"
)

// FormCIDRs is the accepted form of address lists.
const FormCIDRs = "comma-separated IPv4/IPv6 addresses or CIDRs, e.g. 10.0.0.0/8,fd00::1"

// CIDRs is a list of IPv4 and IPv6 prefixes in the order given; a bare address is a full-length
// prefix. Host bits are kept as written (rules use the masked network) so the list formats back
// the way it was given.
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

// IPv4 returns the IPv4 entries, masked.
func (c CIDRs) IPv4() CIDRs { return c.family(true) }

// IPv6 returns the IPv6 entries, masked.
func (c CIDRs) IPv6() CIDRs { return c.family(false) }

func (c CIDRs) family(v4 bool) CIDRs {
	var out CIDRs
	for _, p := range c {
		if p.Addr().Is4() == v4 {
			out = append(out, p.Masked())
		}
	}
	return out
}

// Warnings lists entries that are valid but likely mistakes: host bits set, or repeats.
func (c CIDRs) Warnings() []string {
	var out []string
	for i, p := range c {
		if p.Masked() != p {
			out = append(out, fmt.Sprintf("%s has host bits set; it means %s", p, formatPrefix(p.Masked())))
		}
		for _, earlier := range c[:i] {
			if earlier.Masked().Overlaps(p.Masked()) {
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

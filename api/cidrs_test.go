package api

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestParseCIDRs(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		in      string
		want    CIDRs
		wantErr string
	}{
		{in: "", want: CIDRs{}},
		{in: "10.0.0.1", want: CIDRs{p("10.0.0.1/32")}},
		{in: "10.0.0.0/8, fd00::1", want: CIDRs{p("10.0.0.0/8"), p("fd00::1/128")}},
		{in: "fd00::/8,192.168.0.0/16", want: CIDRs{p("fd00::/8"), p("192.168.0.0/16")}},
		{in: "0.0.0.0/0,::/0", want: CIDRs{p("0.0.0.0/0"), p("::/0")}},
		{in: "10.0.0.1/24", want: CIDRs{p("10.0.0.1/24")}},
		{in: "::ffff:10.0.0.1", want: CIDRs{p("::ffff:10.0.0.1/128")}},
		{in: "10.0.0.0/33", wantErr: `"10.0.0.0/33" is not a CIDR; accepted: ` + FormCIDRs},
		{in: "10.0.0.0/", wantErr: `"10.0.0.0/" is not a CIDR; accepted: ` + FormCIDRs},
		{in: "1.2.3", wantErr: `"1.2.3" is not an IP address; accepted: ` + FormCIDRs},
		{in: "10.0.0.1,example.com", wantErr: `"example.com" in "10.0.0.1,example.com" is not an IP address; accepted: ` + FormCIDRs},
		{in: "fe80::1%eth0", wantErr: `"fe80::1%eth0" has an IPv6 zone, which rules cannot match; accepted: ` + FormCIDRs},
		{in: "10.0.0.1,,10.0.0.2", want: CIDRs{netip.MustParsePrefix("10.0.0.1/32"), netip.MustParsePrefix("10.0.0.2/32")}},
		{in: "10.0.0.1 10.0.0.2", wantErr: `"10.0.0.1 10.0.0.2" is not an IP address; accepted: ` + FormCIDRs},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseCIDRs(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestCIDRsFormatAndFamilies(t *testing.T) {
	c, err := ParseCIDRs("10.0.0.1,fd00::/8,10.1.2.3/16")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String(); got != "10.0.0.1,fd00::/8,10.1.2.3/16" {
		t.Errorf("String() = %q: bare addresses and host bits must format as given", got)
	}
	if got := c.IPv4().String(); got != "10.0.0.1,10.1.0.0/16" {
		t.Errorf("IPv4() = %q, want masked IPv4 entries", got)
	}
	if got := c.IPv6().String(); got != "fd00::/8" {
		t.Errorf("IPv6() = %q", got)
	}
}

func TestCIDRsWarnings(t *testing.T) {
	c, _ := ParseCIDRs("10.0.0.1/24,10.0.0.0/8,fd00::1,fd00::1")
	want := []string{
		"10.0.0.1/24 has host bits set; it means 10.0.0.0/24",
		"10.0.0.0/8 overlaps 10.0.0.1/24",
		"fd00::1 overlaps fd00::1",
	}
	if got := c.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings() =\n%q\nwant\n%q", got, want)
	}
}

// TestIPv4MappedCIDRs: ::ffff:10.0.0.1 is IPv4 on the wire, as Kuma reads it: it lands in the
// IPv4 rules, is written as the IPv4 address it stands for, and is warned about; a prefix shorter
// than the mapped block stays IPv6.
func TestIPv4MappedCIDRs(t *testing.T) {
	c, err := ParseCIDRs("::ffff:10.0.0.1,::ffff:10.1.0.0/112,::ffff:0:0/80,fd00::1")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.IPv4().String(); got != "10.0.0.1,10.1.0.0/16" {
		t.Errorf("IPv4() = %q", got)
	}
	if got := c.IPv6().String(); got != "::/80,fd00::1" {
		t.Errorf("IPv6() = %q", got)
	}
	if got, err := c.MarshalJSON(); err != nil || string(got) != `["10.0.0.1","10.1.0.0/16","::ffff:0.0.0.0/80","fd00::1"]` {
		t.Errorf("MarshalJSON() = %s, %v: the document holds the IPv4 addresses", got, err)
	}
	want := []string{
		"::ffff:10.0.0.1 is an IPv4-mapped IPv6 address, whose traffic is IPv4: it is excluded in the IPv4 rules, as 10.0.0.1",
		"::ffff:10.1.0.0/112 is an IPv4-mapped IPv6 address, whose traffic is IPv4: it is excluded in the IPv4 rules, as 10.1.0.0/16",
		"::ffff:0.0.0.0/80 has host bits set; it means ::/80",
	}
	if got := c.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings() =\n%q\nwant\n%q", got, want)
	}
}

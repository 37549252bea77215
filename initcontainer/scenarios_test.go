package initcontainer

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/api"
)

// scenario is a configuration whose rules a golden file pins and the kernel tests install.
type scenario struct {
	name   string
	modify func(*api.TransparentProxyConfig)
}

var testHost = Host{ProxyUID: 5678, Nameservers: []netip.Addr{netip.MustParseAddr("10.200.0.2"), netip.MustParseAddr("fd00:200::2")}}

func mustParse[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// scenarios are named after the behaviour each pins.
var scenarios = []scenario{
	{"defaults", func(*api.TransparentProxyConfig) {}},
	{"exclude-inbound-ports", func(c *api.TransparentProxyConfig) {
		c.SetInboundExcluded(mustParse(api.ParsePortRanges("22,8000-8100")))
	}},
	{"exclude-outbound-ports", func(c *api.TransparentProxyConfig) {
		c.SetOutboundExcluded(mustParse(api.ParsePortRanges("5432,6379")))
	}},
	{"exclude-ports-multiport-chunks", func(c *api.TransparentProxyConfig) {
		var ports []string
		for p := 1000; p < 1020; p++ {
			ports = append(ports, strconv.Itoa(p))
		}
		ports = append(ports, "2000-2100", "3000-3100")
		c.SetInboundExcluded(mustParse(api.ParsePortRanges(strings.Join(ports, ","))))
		c.SetOutboundExcluded(mustParse(api.ParsePortRanges(strings.Join(ports, ","))))
	}},
	{"exclude-inbound-ips", func(c *api.TransparentProxyConfig) {
		c.Redirect.Inbound.ExcludePortsForIPs = mustParse(api.ParseCIDRs("10.200.0.2,192.168.0.0/16,fd00:200::2"))
	}},
	{"exclude-outbound-ips", func(c *api.TransparentProxyConfig) {
		c.Redirect.Outbound.ExcludePortsForIPs = mustParse(api.ParseCIDRs("169.254.169.254,10.0.0.1/8,fd00:200::/64"))
	}},
	{"exclude-outbound-ports-for-uids", func(c *api.TransparentProxyConfig) {
		c.Redirect.Outbound.ExcludePortsForUIDs = mustParse(api.ParsePortsForUIDsList("tcp:80:1000-2000;udp:53:106;*:3000-3010:107;108"))
		c.Redirect.DNS.Enabled = true
	}},
	{"gateway-no-inbound", func(c *api.TransparentProxyConfig) {
		c.Redirect.Inbound.Enabled = false
	}},
	{"dns-to-nameservers", func(c *api.TransparentProxyConfig) {
		c.Redirect.DNS.Enabled = true
	}},
	{"dns-capture-all", func(c *api.TransparentProxyConfig) {
		c.Redirect.DNS.Enabled = true
		c.Redirect.DNS.CaptureAll = true
	}},
	{"dns-without-conntrack-zones", func(c *api.TransparentProxyConfig) {
		c.Redirect.DNS.Enabled = true
		c.Redirect.DNS.SkipConntrackZoneSplit = true
	}},
	{"drop-invalid-packets", func(c *api.TransparentProxyConfig) {
		c.DropInvalidPackets = true
	}},
	{"iptables-logs", func(c *api.TransparentProxyConfig) {
		c.Log.Enabled = true
		c.Redirect.DNS.Enabled = true
	}},
	{"ipv4-only", func(c *api.TransparentProxyConfig) {
		c.IPFamilyMode = api.IPFamilyIPv4
		c.Redirect.DNS.Enabled = true
	}},
	{"ipv6-only", func(c *api.TransparentProxyConfig) {
		c.SetFamily(api.IPFamilyIPv6)
		c.Redirect.DNS.Enabled = true
	}},
	{"custom-redirect-ports", func(c *api.TransparentProxyConfig) {
		c.Redirect.Inbound.Port, c.Redirect.Outbound.Port = 16006, 16001
		c.Redirect.DNS.Enabled, c.Redirect.DNS.Port = true, 16053
		c.KumaDPUser = "1234"
	}},
	{"universal-redirect-dns-exclude-ssh", func(c *api.TransparentProxyConfig) {
		c.Redirect.DNS.Enabled = true
		c.SetInboundExcluded(mustParse(api.ParsePortRanges("22")))
	}},
	{"include-ports", func(c *api.TransparentProxyConfig) {
		c.Redirect.Inbound.IncludePorts = api.Ports{8080, 9090}
		c.Redirect.Outbound.IncludePorts = api.Ports{80, 443}
		// Ignored where ports are included, as in Kuma; the address exclusions still apply.
		c.SetInboundExcluded(mustParse(api.ParsePortRanges("22,8000-8100")))
		c.Redirect.Outbound.ExcludePortsForIPs = mustParse(api.ParseCIDRs("169.254.169.254"))
	}},
	{"outbound-disabled", func(c *api.TransparentProxyConfig) {
		c.Redirect.Outbound.Enabled = false
		c.Redirect.DNS.Enabled = true
		c.Redirect.Outbound.ExcludePortsForUIDs = mustParse(api.ParsePortsForUIDsList("tcp:22:1000;udp:53:106"))
	}},
	{"outbound-and-dns-disabled", func(c *api.TransparentProxyConfig) {
		c.Redirect.Outbound.Enabled = false
	}},
	{"vnet", func(c *api.TransparentProxyConfig) {
		c.Redirect.VNet.Networks = mustParse(api.ParseVNetworks("docker0:172.17.0.0/16,br+:172.18.0.0/16,docker0:fd00:17::/64"))
		c.Redirect.DNS.Enabled = true
		c.SetOutboundExcluded(mustParse(api.ParsePortRanges("5432")))
		c.Redirect.Outbound.ExcludePortsForIPs = mustParse(api.ParseCIDRs("169.254.169.254"))
	}},
	{"vnet-outbound-disabled", func(c *api.TransparentProxyConfig) {
		c.Redirect.VNet.Networks = mustParse(api.ParseVNetworks("docker0:172.17.0.0/16"))
		c.Redirect.DNS.Enabled = true
		c.Redirect.Outbound.Enabled = false
	}},
	{"log-level", func(c *api.TransparentProxyConfig) {
		c.Log.Enabled = true
		c.Log.Level = 4
	}},
	{"insert-redirect-instead-of-append", func(c *api.TransparentProxyConfig) {
		c.Redirect.Inbound.InsertRedirectInsteadOfAppend = true
		c.Redirect.Outbound.InsertRedirectInsteadOfAppend = true
		c.Redirect.DNS.Enabled = true
	}},
	{"comments-disabled", func(c *api.TransparentProxyConfig) {
		everythingModify(c)
		c.Comments.Disabled = true
	}},
	{"everything", everythingModify},
}

func everythingModify(c *api.TransparentProxyConfig) {
	c.SetInboundExcluded(mustParse(api.ParsePortRanges("22,8000-8100")))
	c.Redirect.Inbound.ExcludePortsForIPs = mustParse(api.ParseCIDRs("192.168.0.0/16,fd00:1::/64"))
	c.SetOutboundExcluded(mustParse(api.ParsePortRanges("5432")))
	c.Redirect.Outbound.ExcludePortsForIPs = mustParse(api.ParseCIDRs("169.254.169.254,fd00:2::1"))
	c.Redirect.Outbound.ExcludePortsForUIDs = mustParse(api.ParsePortsForUIDsList("tcp:22:1000"))
	c.Redirect.DNS.Enabled = true
	c.DropInvalidPackets = true
	c.Log.Enabled = true
}

func (s scenario) config() *api.TransparentProxyConfig {
	c := api.DefaultTransparentProxyConfig()
	s.modify(c)
	if err := c.Validate(); err != nil {
		panic(s.name + ": " + err.Error())
	}
	return c
}

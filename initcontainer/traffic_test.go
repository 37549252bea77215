package initcontainer

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/standin"
)

// The stand-ins' ports and users, short.
const (
	appPort     = standin.AppPort
	sshPort     = standin.SSHPort
	remoteWeb   = standin.RemoteWeb
	remoteDB    = standin.RemoteDB
	dnsPort     = standin.DNSPort
	appUID      = standin.AppUID
	otherAppUID = standin.OtherAppUID
	proxyUID    = 5678
)

type probe = standin.Probe

var (
	toRemote   = standin.ToRemote
	toPod      = standin.ToPod
	toLoopback = standin.ToLoopback
)

// family is the engine's name of a stand-in family.
func family(f standin.Family) Family {
	if f == standin.IPv6 {
		return IPv6
	}
	return IPv4
}

// hostFor makes the remote namespace the nameserver, as resolv.conf would.
func hostFor(p *standin.Pod) Host {
	return Host{ProxyUID: proxyUID, Nameservers: []netip.Addr{p.Remote.IPv4, p.Remote.IPv6}}
}

func TestTraffic(t *testing.T) {
	requireTools(t)
	passthrough := func(f standin.Family) netip.Addr { return family(f).passthroughSource().Addr() }
	// othersMap are someone else's NAT rules, there before the install, as Docker's published ports
	// are: they send the app's traffic to the remote web server to the app, and the remote's to the
	// app to its SSH port. othersReturn take the same traffic out of NAT without mapping it.
	othersMap := fmt.Sprintf("*nat\n-A OUTPUT -p tcp --dport %d -j REDIRECT --to-ports %d\n-A PREROUTING -p tcp --dport %d -j REDIRECT --to-ports %d\nCOMMIT\n",
		remoteWeb, appPort, appPort, sshPort)
	othersReturn := fmt.Sprintf("*nat\n-A OUTPUT -p tcp --dport %d -j RETURN\n-A PREROUTING -p tcp --dport %d -j RETURN\nCOMMIT\n", remoteWeb, appPort)
	cases := []struct {
		name     string
		modify   func(*api.TransparentProxyConfig)
		host     func(*standin.Pod) Host
		families []standin.Family
		// foreign is a restore script of others' rules, in iptables-nft as Docker's and
		// kube-proxy's are, applied to both families before the install.
		foreign string
		probes  []probe
		// nftProbes replace probes with the nftables backend, where its decisions differ.
		nftProbes []probe
	}{
		{name: "default paths", modify: func(c *api.TransparentProxyConfig) { c.Redirect.DNS.Enabled = true },
			probes: []probe{
				{Name: "outbound TCP", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
				{Name: "outbound TCP of the proxy", From: standin.Proxy, To: toRemote, Port: remoteWeb, Lands: "remote-web"},
				{Name: "inbound TCP", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
				{Name: "localhost", To: toLoopback, Port: appPort, Lands: "app"},
				{Name: "loopback of another user to the pod address", To: toPod, Port: appPort, Lands: "app"},
				{Name: "hairpin: the proxy to the pod address", From: standin.Proxy, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
				{Name: "the proxy forwarding inbound to the app", From: standin.Proxy, Source: passthrough, To: toPod, Port: appPort, Lands: "app"},
				{Name: "the proxy to localhost", From: standin.Proxy, To: toLoopback, Port: appPort, Lands: "app"},
				{Name: "DNS to the nameserver", UDP: true, To: toRemote, Port: dnsPort, Lands: "sidecar-dns", Redirected: true},
				{Name: "DNS of the proxy", From: standin.Proxy, UDP: true, To: toRemote, Port: dnsPort, Lands: "nameserver"},
			}},
		{name: "excluded inbound ports and ranges", modify: func(c *api.TransparentProxyConfig) {
			c.SetInboundExcluded(mustParse(api.ParsePortRanges("22,8000-8100")))
		}, probes: []probe{
			{Name: "inbound to an excluded port", From: standin.Remote, To: toPod, Port: sshPort, Lands: "app-ssh"},
			{Name: "inbound to a port in an excluded range", From: standin.Remote, To: toPod, Port: appPort, Lands: "app"},
			{Name: "outbound is still redirected", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
		}},
		{name: "excluded ports in a later multiport chunk", modify: func(c *api.TransparentProxyConfig) {
			c.SetInboundExcluded(mustParse(api.ParsePortRanges("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,8080")))
			c.SetOutboundExcluded(mustParse(api.ParsePortRanges("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,5432")))
		}, probes: []probe{
			{Name: "inbound to the excluded port", From: standin.Remote, To: toPod, Port: appPort, Lands: "app"},
			{Name: "inbound to another port", From: standin.Remote, To: toPod, Port: sshPort, Lands: "sidecar-inbound", Redirected: true},
			{Name: "outbound to the excluded port", To: toRemote, Port: remoteDB, Lands: "remote-db"},
			{Name: "outbound to another port", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
		}},
		{name: "excluded outbound ports", modify: func(c *api.TransparentProxyConfig) {
			c.SetOutboundExcluded(mustParse(api.ParsePortRanges("5000-6000")))
		}, probes: []probe{
			{Name: "outbound to an excluded port", To: toRemote, Port: remoteDB, Lands: "remote-db"},
			{Name: "outbound to another port", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
		}},
		{name: "excluded inbound addresses", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.ExcludePortsForIPs = mustParse(api.ParseCIDRs("10.200.0.0/24,fd00:200::2"))
		}, probes: []probe{
			{Name: "inbound from an excluded address", From: standin.Remote, To: toPod, Port: appPort, Lands: "app"},
		}},
		{name: "excluded outbound addresses", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Outbound.ExcludePortsForIPs = mustParse(api.ParseCIDRs("10.200.0.2,fd00:200::/64"))
		}, probes: []probe{
			{Name: "outbound to an excluded address", To: toRemote, Port: remoteWeb, Lands: "remote-web"},
			{Name: "inbound is still redirected", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
		}},
		{name: "excluded outbound ports for UIDs", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.Enabled = true
			c.Redirect.Outbound.ExcludePortsForUIDs = mustParse(api.ParsePortsForUIDsList(
				fmt.Sprintf("tcp:%d:%d;udp:%d:%d", remoteWeb, appUID, dnsPort, otherAppUID)))
		}, probes: []probe{
			{Name: "TCP of the excluded UID to the excluded port", UID: appUID, To: toRemote, Port: remoteWeb, Lands: "remote-web"},
			{Name: "TCP of the excluded UID to another port", UID: appUID, To: toRemote, Port: remoteDB, Lands: "sidecar-outbound", Redirected: true},
			{Name: "TCP of another UID to the excluded port", UID: otherAppUID, To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
			{Name: "DNS of the UID excluded for UDP", UID: otherAppUID, UDP: true, To: toRemote, Port: dnsPort, Lands: "nameserver"},
			{Name: "DNS of the UID excluded for TCP only", UID: appUID, UDP: true, To: toRemote, Port: dnsPort, Lands: "sidecar-dns", Redirected: true},
		}},
		{name: "gateway: no inbound redirection", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.Enabled = false
		}, probes: []probe{
			{Name: "inbound TCP", From: standin.Remote, To: toPod, Port: appPort, Lands: "app"},
			{Name: "the proxy to the pod address", From: standin.Proxy, To: toPod, Port: appPort, Lands: "app"},
			{Name: "outbound TCP", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
		}},
		{name: "DNS only to the nameservers of resolv.conf", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.Enabled = true
		}, host: func(*standin.Pod) Host {
			return Host{ProxyUID: proxyUID, Nameservers: []netip.Addr{netip.MustParseAddr("10.200.0.99"), netip.MustParseAddr("fd00:200::99")}}
		}, probes: []probe{
			{Name: "DNS to a server that is not a nameserver", UDP: true, To: toRemote, Port: dnsPort, Lands: "nameserver"},
		}},
		{name: "all DNS", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.Enabled = true
			c.Redirect.DNS.CaptureAll = true
		}, host: func(*standin.Pod) Host {
			return Host{ProxyUID: proxyUID, Nameservers: []netip.Addr{netip.MustParseAddr("10.200.0.99")}}
		}, probes: []probe{
			{Name: "DNS to any server", UDP: true, To: toRemote, Port: dnsPort, Lands: "sidecar-dns", Redirected: true},
			{Name: "DNS of the proxy", From: standin.Proxy, UDP: true, To: toRemote, Port: dnsPort, Lands: "nameserver"},
		}},
		{name: "DNS off", probes: []probe{
			{Name: "DNS", UDP: true, To: toRemote, Port: dnsPort, Lands: "nameserver"},
		}},
		{name: "ipv4 mode leaves IPv6 alone", modify: func(c *api.TransparentProxyConfig) {
			c.IPFamilyMode = api.IPFamilyIPv4
		}, families: []standin.Family{standin.IPv6}, probes: []probe{
			{Name: "outbound TCP", To: toRemote, Port: remoteWeb, Lands: "remote-web"},
			{Name: "inbound TCP", From: standin.Remote, To: toPod, Port: appPort, Lands: "app"},
		}},
		{name: "ipv4 mode redirects IPv4", modify: func(c *api.TransparentProxyConfig) {
			c.IPFamilyMode = api.IPFamilyIPv4
		}, families: []standin.Family{standin.IPv4}, probes: []probe{
			{Name: "outbound TCP", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
		}},
		{name: "ipv6 mode leaves IPv4 alone", modify: func(c *api.TransparentProxyConfig) {
			c.SetFamily(api.IPFamilyIPv6)
		}, families: []standin.Family{standin.IPv4}, probes: []probe{
			{Name: "outbound TCP", To: toRemote, Port: remoteWeb, Lands: "remote-web"},
		}},
		{name: "included ports alone", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.IncludePorts = api.Ports{appPort}
			c.Redirect.Outbound.IncludePorts = api.Ports{remoteDB}
			c.SetInboundExcluded(mustParse(api.ParsePortRanges(fmt.Sprint(appPort)))) // ignored, as in Kuma
		}, probes: []probe{
			{Name: "inbound to an included port", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
			{Name: "inbound to another port", From: standin.Remote, To: toPod, Port: sshPort, Lands: "app-ssh"},
			{Name: "outbound to an included port", To: toRemote, Port: remoteDB, Lands: "sidecar-outbound", Redirected: true},
			{Name: "outbound to another port", To: toRemote, Port: remoteWeb, Lands: "remote-web"},
			{Name: "hairpin: the proxy to the pod address", From: standin.Proxy, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
		}},
		{name: "outbound disabled, DNS still redirected", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Outbound.Enabled = false
			c.Redirect.DNS.Enabled = true
		}, probes: []probe{
			{Name: "outbound TCP", To: toRemote, Port: remoteWeb, Lands: "remote-web"},
			{Name: "the proxy to the pod address", From: standin.Proxy, To: toPod, Port: appPort, Lands: "app"},
			{Name: "inbound TCP", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
			{Name: "DNS to the nameserver", UDP: true, To: toRemote, Port: dnsPort, Lands: "sidecar-dns", Redirected: true},
			{Name: "DNS of the proxy", From: standin.Proxy, UDP: true, To: toRemote, Port: dnsPort, Lands: "nameserver"},
		}},
		{name: "the jumps appended after others' NAT", foreign: othersMap, probes: []probe{
			{Name: "outbound TCP others map first", To: toRemote, Port: remoteWeb, Lands: "app", Redirected: true},
			{Name: "other outbound TCP", To: toRemote, Port: remoteDB, Lands: "sidecar-outbound", Redirected: true},
			{Name: "inbound TCP others map first", From: standin.Remote, To: toPod, Port: appPort, Lands: "app-ssh", Redirected: true},
			{Name: "other inbound TCP", From: standin.Remote, To: toPod, Port: sshPort, Lands: "sidecar-inbound", Redirected: true},
		}},
		{name: "the jumps inserted before others' NAT", foreign: othersMap, modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.InsertRedirectInsteadOfAppend = true
			c.Redirect.Outbound.InsertRedirectInsteadOfAppend = true
		}, probes: []probe{
			{Name: "outbound TCP others would map", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
			{Name: "inbound TCP others would map", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
		}},
		// An ACCEPT or RETURN ends iptables' nat chain, and the jumps appended after it; another
		// table's chain, ours with nftables, still runs (README, "Backends").
		{name: "the jumps appended after others' bare RETURN", foreign: othersReturn, probes: []probe{
			{Name: "outbound TCP others return first", To: toRemote, Port: remoteWeb, Lands: "remote-web"},
			{Name: "inbound TCP others return first", From: standin.Remote, To: toPod, Port: appPort, Lands: "app"},
		}, nftProbes: []probe{
			{Name: "outbound TCP others return first", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
			{Name: "inbound TCP others return first", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
		}},
		{name: "the jumps inserted before others' bare RETURN", foreign: othersReturn, modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.InsertRedirectInsteadOfAppend = true
			c.Redirect.Outbound.InsertRedirectInsteadOfAppend = true
		}, probes: []probe{
			{Name: "outbound TCP others would return", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
			{Name: "inbound TCP others would return", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
		}},
		{name: "rules without comments", modify: func(c *api.TransparentProxyConfig) {
			c.Comments.Disabled = true
			c.Redirect.DNS.Enabled = true
		}, probes: []probe{
			{Name: "outbound TCP", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
			{Name: "inbound TCP", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
			{Name: "the proxy forwarding inbound to the app", From: standin.Proxy, Source: passthrough, To: toPod, Port: appPort, Lands: "app"},
			{Name: "DNS to the nameserver", UDP: true, To: toRemote, Port: dnsPort, Lands: "sidecar-dns", Redirected: true},
		}},
		{name: "custom redirect ports", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.Port, c.Redirect.Outbound.Port, c.Redirect.DNS.Port = 16006, 16001, 16053
			c.Redirect.DNS.Enabled = true
		}, probes: []probe{
			{Name: "outbound TCP", To: toRemote, Port: remoteWeb, Lands: "sidecar-outbound", Redirected: true},
			{Name: "inbound TCP", From: standin.Remote, To: toPod, Port: appPort, Lands: "sidecar-inbound", Redirected: true},
			{Name: "DNS", UDP: true, To: toRemote, Port: dnsPort, Lands: "sidecar-dns", Redirected: true},
		}},
	}
	for _, b := range trafficBackends {
		for _, tc := range cases {
			t.Run(b.String()+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				cfg := api.DefaultTransparentProxyConfig()
				if tc.modify != nil {
					tc.modify(cfg)
				}
				p := standin.New(t, cfg)
				host := hostFor(p)
				if tc.host != nil {
					host = tc.host(p)
				}
				if tc.foreign != "" {
					for _, f := range []Family{IPv4, IPv6} {
						p.Pod.RunInput(t, tc.foreign, Backend{Name: "nft"}.Tool(f, "restore"), "--noflush")
					}
				}
				install(t, p.Pod, b, cfg, host)
				families := tc.families
				if families == nil {
					families = standin.Families
				}
				probes := tc.probes
				if b.Native() && tc.nftProbes != nil {
					probes = tc.nftProbes
				}
				for _, f := range families {
					for _, pr := range probes {
						p.Check(t, f, pr)
					}
				}
			})
		}
	}
}

// TestVirtualNetworks sends traffic from a container on a virtual network of the host, as Docker's
// are: leaving the network, it is the host's outbound traffic; within it, it is not redirected.
func TestVirtualNetworks(t *testing.T) {
	requireTools(t)
	for _, b := range trafficBackends {
		for _, f := range standin.Families {
			t.Run(b.String()+"/"+f.String(), func(t *testing.T) { virtualNetworks(t, b, f) })
		}
	}
}

func virtualNetworks(t *testing.T, b Backend, f standin.Family) {
	t.Parallel()
	cfg := api.DefaultTransparentProxyConfig()
	cfg.Redirect.DNS.Enabled = true
	cfg.Redirect.VNet.Networks = api.VNetworks{{Interface: "vnet+", CIDR: netkit.VNetIPv4}, {Interface: "vnet+", CIDR: netkit.VNetIPv6}}
	cfg.SetOutboundExcluded(mustParse(api.ParsePortRanges(fmt.Sprint(remoteDB))))
	p := standin.New(t, cfg)
	container := netkit.VNet(t, p.Pod, "vnet0")
	host := netip.AddrPortFrom(netkit.VNetHostIPv4, cfg.Redirect.DNS.Port)
	if f == standin.IPv6 {
		host = netip.AddrPortFrom(netkit.VNetHostIPv6, cfg.Redirect.DNS.Port)
	}
	// REDIRECT sends what arrives on vnet0 to vnet0's own address, where kuma-dp listens with
	// a virtual network.
	p.Pod.ListenUDP(t, "sidecar-dns-vnet", host, netkit.OwnedBy(proxyUID), netkit.InConntrackZones(1, 2))
	install(t, p.Pod, b, cfg, hostFor(p))
	remote := standin.ToRemote(p, f)
	for _, tc := range []struct {
		name       string
		udp        bool
		dst        netip.AddrPort
		lands      string
		redirected bool
	}{
		{"TCP leaving the network", false, netip.AddrPortFrom(remote, remoteWeb), "sidecar-outbound", true},
		{"TCP to an excluded port", false, netip.AddrPortFrom(remote, remoteDB), "remote-db", false},
		{"TCP to the host within the network, inbound", false, netip.AddrPortFrom(host.Addr(), appPort), "sidecar-inbound", true},
		{"DNS", true, netip.AddrPortFrom(remote, dnsPort), "sidecar-dns-vnet", true},
	} {
		exchange := container.DialTCP
		if tc.udp {
			exchange = container.ExchangeUDP
		}
		reply, err := exchange(t, tc.dst)
		want := reply.Local
		if tc.redirected {
			want = tc.dst
		}
		if err != nil || reply.Listener != tc.lands || reply.OriginalDst != want {
			t.Errorf("%s to %s: landed on %q with original destination %s (%v); want %s with %s", tc.name, tc.dst, reply.Listener, reply.OriginalDst, err, tc.lands, want)
		}
	}
}

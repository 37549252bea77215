package initcontainer

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
)

// Ports of the stand-ins in the traffic tests.
const (
	appPort     = 8080
	sshPort     = 22
	remoteWeb   = 80
	remoteDB    = 5432
	dnsPort     = 53
	appUID      = 1000
	otherAppUID = 1001
	proxyUID    = 5678
)

// pod is a pod namespace with stand-ins for the sidecar's listeners and the application, and a
// remote namespace with a web server, a database and a nameserver.
type pod struct {
	*netkit.Net
	cfg *api.TransparentProxyConfig
}

func newPod(t *testing.T, cfg *api.TransparentProxyConfig) *pod {
	t.Helper()
	net := netkit.New(t)
	for _, any := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		loop := netip.MustParseAddr("127.0.0.1")
		if any.Is6() {
			loop = netip.IPv6Loopback()
		}
		// REDIRECT sends locally made traffic to loopback, and arriving traffic to the address it
		// arrived on: the sidecar listens on all addresses, as Envoy does.
		net.Pod.ListenTCP(t, "sidecar-outbound", netip.AddrPortFrom(any, cfg.Redirect.Outbound.Port), netkit.OwnedBy(proxyUID))
		net.Pod.ListenTCP(t, "sidecar-inbound", netip.AddrPortFrom(any, cfg.Redirect.Inbound.Port), netkit.OwnedBy(proxyUID))
		net.Pod.ListenUDP(t, "sidecar-dns", netip.AddrPortFrom(loop, cfg.Redirect.DNS.Port),
			netkit.OwnedBy(proxyUID), netkit.InConntrackZones(zoneApplication))
		net.Pod.ListenTCP(t, "app", netip.AddrPortFrom(any, appPort))
		net.Pod.ListenTCP(t, "app-ssh", netip.AddrPortFrom(any, sshPort))
		net.Remote.ListenTCP(t, "remote-web", netip.AddrPortFrom(any, remoteWeb))
		net.Remote.ListenTCP(t, "remote-db", netip.AddrPortFrom(any, remoteDB))
		net.Remote.ListenUDP(t, "nameserver", netip.AddrPortFrom(any, dnsPort))
	}
	return &pod{Net: net, cfg: cfg}
}

// probe is one path through the pod and where it must land.
type probe struct {
	name string
	// from is "app" (a process in the pod), "remote", or "proxy" (the sidecar's UID).
	from  string
	udp   bool
	uid   uint32
	src   func(f Family) netip.Addr // source address; zero for the kernel's choice
	to    func(p *pod, f Family) netip.Addr
	port  uint16
	lands string // the listener that must answer
	// redirected: the listener must see the original destination, not its own address.
	redirected bool
}

func (p *pod) podAddr(f Family) netip.Addr {
	if f == IPv6 {
		return p.Pod.IPv6
	}
	return p.Pod.IPv4
}

func (p *pod) remoteAddr(f Family) netip.Addr {
	if f == IPv6 {
		return p.Remote.IPv6
	}
	return p.Remote.IPv4
}

var (
	toRemote   = (*pod).remoteAddr
	toPod      = (*pod).podAddr
	toLoopback = func(_ *pod, f Family) netip.Addr { return f.Loopback().Addr() }
)

// run sends the probe in family f and checks where it landed and what it saw.
func (p *pod) run(t *testing.T, f Family, pr probe) {
	t.Helper()
	dst := netip.AddrPortFrom(pr.to(p, f), pr.port)
	ns := p.Pod
	var opts []netkit.DialOption
	switch pr.from {
	case "remote":
		ns = p.Remote
	case "proxy":
		opts = append(opts, netkit.AsUID(proxyUID))
	default:
		uid := pr.uid
		if uid == 0 {
			uid = appUID
		}
		opts = append(opts, netkit.AsUID(uid))
	}
	if pr.src != nil {
		opts = append(opts, netkit.WithSource(pr.src(f)))
	}
	exchange := ns.DialTCP
	if pr.udp {
		exchange = ns.ExchangeUDP
	}
	reply, err := exchange(t, dst, opts...)
	if err != nil {
		t.Errorf("%s %s to %s: %v", f, pr.name, dst, err)
		return
	}
	if reply.Listener != pr.lands {
		t.Errorf("%s %s to %s landed on %s, want %s", f, pr.name, dst, reply.Listener, pr.lands)
		return
	}
	wantOrig := reply.Local
	if pr.redirected {
		wantOrig = dst
	}
	if reply.OriginalDst != wantOrig {
		t.Errorf("%s %s: %s saw original destination %s, want %s", f, pr.name, reply.Listener, reply.OriginalDst, wantOrig)
	}
}

// hostFor makes the remote namespace the nameserver, as resolv.conf would.
func hostFor(p *pod) Host {
	return Host{ProxyUID: proxyUID, Nameservers: []netip.Addr{p.Remote.IPv4, p.Remote.IPv6}}
}

func TestTraffic(t *testing.T) {
	requireTools(t)
	passthrough := func(f Family) netip.Addr { return f.passthroughSource().Addr() }
	cases := []struct {
		name     string
		modify   func(*api.TransparentProxyConfig)
		host     func(*pod) Host
		families []Family
		probes   []probe
	}{
		{name: "default paths", modify: func(c *api.TransparentProxyConfig) { c.Redirect.DNS.Enabled = true },
			probes: []probe{
				{name: "outbound TCP", to: toRemote, port: remoteWeb, lands: "sidecar-outbound", redirected: true},
				{name: "outbound TCP of the proxy", from: "proxy", to: toRemote, port: remoteWeb, lands: "remote-web"},
				{name: "inbound TCP", from: "remote", to: toPod, port: appPort, lands: "sidecar-inbound", redirected: true},
				{name: "localhost", to: toLoopback, port: appPort, lands: "app"},
				{name: "loopback of another user to the pod address", to: toPod, port: appPort, lands: "app"},
				{name: "hairpin: the proxy to the pod address", from: "proxy", to: toPod, port: appPort, lands: "sidecar-inbound", redirected: true},
				{name: "the proxy forwarding inbound to the app", from: "proxy", src: passthrough, to: toPod, port: appPort, lands: "app"},
				{name: "the proxy to localhost", from: "proxy", to: toLoopback, port: appPort, lands: "app"},
				{name: "DNS to the nameserver", udp: true, to: toRemote, port: dnsPort, lands: "sidecar-dns", redirected: true},
				{name: "DNS of the proxy", from: "proxy", udp: true, to: toRemote, port: dnsPort, lands: "nameserver"},
			}},
		{name: "excluded inbound ports and ranges", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.ExcludePorts = mustParse(api.ParsePortRanges("22,8000-8100"))
		}, probes: []probe{
			{name: "inbound to an excluded port", from: "remote", to: toPod, port: sshPort, lands: "app-ssh"},
			{name: "inbound to a port in an excluded range", from: "remote", to: toPod, port: appPort, lands: "app"},
			{name: "outbound is still redirected", to: toRemote, port: remoteWeb, lands: "sidecar-outbound", redirected: true},
		}},
		{name: "excluded ports in a later multiport chunk", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.ExcludePorts = mustParse(api.ParsePortRanges("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,8080"))
			c.Redirect.Outbound.ExcludePorts = mustParse(api.ParsePortRanges("1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,5432"))
		}, probes: []probe{
			{name: "inbound to the excluded port", from: "remote", to: toPod, port: appPort, lands: "app"},
			{name: "inbound to another port", from: "remote", to: toPod, port: sshPort, lands: "sidecar-inbound", redirected: true},
			{name: "outbound to the excluded port", to: toRemote, port: remoteDB, lands: "remote-db"},
			{name: "outbound to another port", to: toRemote, port: remoteWeb, lands: "sidecar-outbound", redirected: true},
		}},
		{name: "excluded outbound ports", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Outbound.ExcludePorts = mustParse(api.ParsePortRanges("5000-6000"))
		}, probes: []probe{
			{name: "outbound to an excluded port", to: toRemote, port: remoteDB, lands: "remote-db"},
			{name: "outbound to another port", to: toRemote, port: remoteWeb, lands: "sidecar-outbound", redirected: true},
		}},
		{name: "excluded inbound addresses", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.ExcludeIPs = mustParse(api.ParseCIDRs("10.200.0.0/24,fd00:200::2"))
		}, probes: []probe{
			{name: "inbound from an excluded address", from: "remote", to: toPod, port: appPort, lands: "app"},
		}},
		{name: "excluded outbound addresses", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Outbound.ExcludeIPs = mustParse(api.ParseCIDRs("10.200.0.2,fd00:200::/64"))
		}, probes: []probe{
			{name: "outbound to an excluded address", to: toRemote, port: remoteWeb, lands: "remote-web"},
			{name: "inbound is still redirected", from: "remote", to: toPod, port: appPort, lands: "sidecar-inbound", redirected: true},
		}},
		{name: "excluded outbound ports for UIDs", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.Enabled = true
			c.Redirect.Outbound.ExcludePortsForUIDs = mustParse(api.ParsePortsForUIDsList(
				fmt.Sprintf("tcp:%d:%d;udp:%d:%d", remoteWeb, appUID, dnsPort, otherAppUID)))
		}, probes: []probe{
			{name: "TCP of the excluded UID to the excluded port", uid: appUID, to: toRemote, port: remoteWeb, lands: "remote-web"},
			{name: "TCP of the excluded UID to another port", uid: appUID, to: toRemote, port: remoteDB, lands: "sidecar-outbound", redirected: true},
			{name: "TCP of another UID to the excluded port", uid: otherAppUID, to: toRemote, port: remoteWeb, lands: "sidecar-outbound", redirected: true},
			{name: "DNS of the UID excluded for UDP", uid: otherAppUID, udp: true, to: toRemote, port: dnsPort, lands: "nameserver"},
			{name: "DNS of the UID excluded for TCP only", uid: appUID, udp: true, to: toRemote, port: dnsPort, lands: "sidecar-dns", redirected: true},
		}},
		{name: "gateway: no inbound redirection", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.Enabled = false
		}, probes: []probe{
			{name: "inbound TCP", from: "remote", to: toPod, port: appPort, lands: "app"},
			{name: "the proxy to the pod address", from: "proxy", to: toPod, port: appPort, lands: "app"},
			{name: "outbound TCP", to: toRemote, port: remoteWeb, lands: "sidecar-outbound", redirected: true},
		}},
		{name: "DNS only to the nameservers of resolv.conf", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.Enabled = true
		}, host: func(*pod) Host {
			return Host{ProxyUID: proxyUID, Nameservers: []netip.Addr{netip.MustParseAddr("10.200.0.99"), netip.MustParseAddr("fd00:200::99")}}
		}, probes: []probe{
			{name: "DNS to a server that is not a nameserver", udp: true, to: toRemote, port: dnsPort, lands: "nameserver"},
		}},
		{name: "all DNS", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.Enabled = true
			c.Redirect.DNS.CaptureAll = true
		}, host: func(*pod) Host {
			return Host{ProxyUID: proxyUID, Nameservers: []netip.Addr{netip.MustParseAddr("10.200.0.99")}}
		}, probes: []probe{
			{name: "DNS to any server", udp: true, to: toRemote, port: dnsPort, lands: "sidecar-dns", redirected: true},
			{name: "DNS of the proxy", from: "proxy", udp: true, to: toRemote, port: dnsPort, lands: "nameserver"},
		}},
		{name: "DNS off", probes: []probe{
			{name: "DNS", udp: true, to: toRemote, port: dnsPort, lands: "nameserver"},
		}},
		{name: "ipv4 mode leaves IPv6 alone", modify: func(c *api.TransparentProxyConfig) {
			c.IPFamilyMode = api.IPFamilyIPv4
		}, families: []Family{IPv6}, probes: []probe{
			{name: "outbound TCP", to: toRemote, port: remoteWeb, lands: "remote-web"},
			{name: "inbound TCP", from: "remote", to: toPod, port: appPort, lands: "app"},
		}},
		{name: "ipv4 mode redirects IPv4", modify: func(c *api.TransparentProxyConfig) {
			c.IPFamilyMode = api.IPFamilyIPv4
		}, families: []Family{IPv4}, probes: []probe{
			{name: "outbound TCP", to: toRemote, port: remoteWeb, lands: "sidecar-outbound", redirected: true},
		}},
		{name: "ipv6 mode leaves IPv4 alone", modify: func(c *api.TransparentProxyConfig) {
			c.IPFamilyMode = api.IPFamilyIPv6
		}, families: []Family{IPv4}, probes: []probe{
			{name: "outbound TCP", to: toRemote, port: remoteWeb, lands: "remote-web"},
		}},
		{name: "custom redirect ports", modify: func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.Port, c.Redirect.Outbound.Port, c.Redirect.DNS.Port = 16006, 16001, 16053
			c.Redirect.DNS.Enabled = true
		}, probes: []probe{
			{name: "outbound TCP", to: toRemote, port: remoteWeb, lands: "sidecar-outbound", redirected: true},
			{name: "inbound TCP", from: "remote", to: toPod, port: appPort, lands: "sidecar-inbound", redirected: true},
			{name: "DNS", udp: true, to: toRemote, port: dnsPort, lands: "sidecar-dns", redirected: true},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := api.DefaultTransparentProxyConfig()
			if tc.modify != nil {
				tc.modify(cfg)
			}
			p := newPod(t, cfg)
			host := hostFor(p)
			if tc.host != nil {
				host = tc.host(p)
			}
			install(t, p.Pod, Backend{Name: "nft"}, cfg, host)
			families := tc.families
			if families == nil {
				families = []Family{IPv4, IPv6}
			}
			for _, f := range families {
				for _, pr := range tc.probes {
					p.run(t, f, pr)
				}
			}
		})
	}
}

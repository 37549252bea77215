package e2e

import (
	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/standin"
)

// path is a probe and the families it is sent in.
type path struct {
	standin.Probe
	families []standin.Family
}

func both(p standin.Probe) path                   { return path{p, standin.Families} }
func only(f standin.Family, p standin.Probe) path { return path{p, []standin.Family{f}} }

// The paths every meshed pod has, as the defaults make them.
var (
	outbound        = standin.Probe{Name: "outbound TCP from the app", To: standin.ToRemote, Port: standin.RemoteWeb, Lands: "sidecar-outbound", Redirected: true}
	outboundOfProxy = standin.Probe{Name: "outbound TCP of the sidecar itself", From: standin.Proxy, To: standin.ToRemote, Port: standin.RemoteWeb, Lands: "remote-web"}
	inbound         = standin.Probe{Name: "inbound TCP to the app", From: standin.Remote, To: standin.ToPod, Port: standin.AppPort, Lands: "sidecar-inbound", Redirected: true}
	localhost       = standin.Probe{Name: "the app to localhost", To: standin.ToLoopback, Port: standin.AppPort, Lands: "app"}
	dns             = standin.Probe{Name: "DNS from the app", UDP: true, To: standin.ToRemote, Port: standin.DNSPort, Lands: "sidecar-dns", Redirected: true}
	dnsOfProxy      = standin.Probe{Name: "DNS of the sidecar itself", From: standin.Proxy, UDP: true, To: standin.ToRemote, Port: standin.DNSPort, Lands: "nameserver"}
)

// scenario is a pod's annotations and where its traffic must go.
type scenario struct {
	name        string
	annotations map[string]string
	paths       []path
}

// with returns p landing elsewhere, under another name.
func with(p standin.Probe, name string, port uint16, lands string) standin.Probe {
	p.Name, p.Port, p.Lands, p.Redirected = name, port, lands, lands == "sidecar-outbound" || lands == "sidecar-inbound"
	return p
}

// scenarios are the annotation sets of the end-to-end test, named after what they pin.
var scenarios = []scenario{
	{name: "defaults", paths: []path{both(outbound), both(outboundOfProxy), both(inbound), both(localhost), both(dns), both(dnsOfProxy)}},
	{name: "excluded ports and ranges", annotations: map[string]string{
		api.AnnotationExcludeInboundPorts: "22", api.AnnotationExcludeOutboundPorts: "5000-6000",
	}, paths: []path{
		both(with(inbound, "inbound TCP to the excluded port 22", standin.SSHPort, "app-ssh")),
		both(inbound),
		both(with(outbound, "outbound TCP to 5432, in the excluded range", standin.RemoteDB, "remote-db")),
		both(outbound),
	}},
	{name: "excluded addresses", annotations: map[string]string{
		api.AnnotationExcludeOutboundIPs: "10.200.0.2,fd00:200::2", api.AnnotationExcludeInboundIPs: "10.200.0.0/24,fd00:200::/64",
	}, paths: []path{
		both(with(outbound, "outbound TCP to an excluded address", standin.RemoteWeb, "remote-web")),
		both(with(inbound, "inbound TCP from an excluded network", standin.AppPort, "app")),
		both(localhost),
	}},
	{name: "DNS off", annotations: map[string]string{api.AnnotationBuiltinDNS: "disabled"}, paths: []path{
		both(with(dns, "DNS from the app", standin.DNSPort, "nameserver")),
		both(outbound),
	}},
	{name: "IPv4 only", annotations: map[string]string{api.AnnotationIPFamilyMode: "ipv4"}, paths: []path{
		only(standin.IPv4, outbound), only(standin.IPv4, inbound),
		only(standin.IPv6, with(outbound, "outbound TCP from the app", standin.RemoteWeb, "remote-web")),
		only(standin.IPv6, with(inbound, "inbound TCP to the app", standin.AppPort, "app")),
	}},
	{name: "gateway", annotations: map[string]string{api.AnnotationGateway: "enabled"}, paths: []path{
		both(with(inbound, "inbound TCP, not redirected for a gateway", standin.AppPort, "app")),
		both(outbound),
	}},
}

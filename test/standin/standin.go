// Package standin stands in for a meshed pod's processes in real network namespaces, so that the
// transparent proxy's rules can be proven on real traffic: listeners for the sidecar's redirect
// ports (owned by the sidecar's UID, as Envoy's sockets are), for the application, and, in a
// remote namespace, a web server, a database and a nameserver; and probes that send traffic along
// one path and report where it landed and with which original destination.
package standin

import (
	"fmt"
	"net/netip"
	"strconv"
	"testing"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
)

// Ports and users of the stand-ins.
const (
	AppPort     = 8080
	SSHPort     = 22
	RemoteWeb   = 80
	RemoteDB    = 5432
	DNSPort     = 53
	AppUID      = 1000
	OtherAppUID = 1001
)

// dnsZones are the conntrack zones kuma-init puts DNS flows in (the proxy's upstream flows and the
// applications'), where the DNS stand-in finds the original destination of what it receives.
var dnsZones = []uint16{1, 2}

// Family is an IP family of a probe.
type Family int

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string { return fmt.Sprintf("IPv%d", int(f)) }

// Families are both, in order.
var Families = []Family{IPv4, IPv6}

// Loopback is the family's loopback address.
func (f Family) Loopback() netip.Addr {
	if f == IPv6 {
		return netip.IPv6Loopback()
	}
	return netip.MustParseAddr("127.0.0.1")
}

// Pod is a pod namespace with stand-ins for the sidecar and the application, and a remote namespace
// with a web server, a database and a nameserver, joined by a veth pair (package netkit).
type Pod struct {
	*netkit.Net
	ProxyUID uint32
}

// New creates the namespaces and starts the stand-ins, listening on the redirect ports of cfg.
func New(t testing.TB, cfg *api.TransparentProxyConfig) *Pod {
	t.Helper()
	uid, err := strconv.ParseUint(cfg.KumaDPUser, 10, 32)
	if err != nil {
		t.Fatalf("standin: kumaDPUser %q is not a UID", cfg.KumaDPUser)
	}
	p := &Pod{Net: netkit.New(t), ProxyUID: uint32(uid)}
	p.Listen(t, cfg)
	return p
}

// Listen starts the stand-ins in p's namespaces; New calls it.
func (p *Pod) Listen(t testing.TB, cfg *api.TransparentProxyConfig) {
	t.Helper()
	for _, f := range Families {
		// REDIRECT sends locally made traffic to loopback, and arriving traffic to the address it
		// arrived on: the sidecar listens on all addresses, as Envoy does.
		all := netip.IPv4Unspecified()
		if f == IPv6 {
			all = netip.IPv6Unspecified()
		}
		p.Pod.ListenTCP(t, "sidecar-outbound", netip.AddrPortFrom(all, cfg.Redirect.Outbound.Port), netkit.OwnedBy(p.ProxyUID))
		p.Pod.ListenTCP(t, "sidecar-inbound", netip.AddrPortFrom(all, cfg.Redirect.Inbound.Port), netkit.OwnedBy(p.ProxyUID))
		p.Pod.ListenUDP(t, "sidecar-dns", netip.AddrPortFrom(f.Loopback(), cfg.Redirect.DNS.Port),
			netkit.OwnedBy(p.ProxyUID), netkit.InConntrackZones(dnsZones...))
		p.Pod.ListenTCP(t, "app", netip.AddrPortFrom(all, AppPort))
		p.Pod.ListenTCP(t, "app-ssh", netip.AddrPortFrom(all, SSHPort))
		p.Remote.ListenTCP(t, "remote-web", netip.AddrPortFrom(all, RemoteWeb))
		p.Remote.ListenTCP(t, "remote-db", netip.AddrPortFrom(all, RemoteDB))
		p.Remote.ListenUDP(t, "nameserver", netip.AddrPortFrom(all, DNSPort))
	}
}

// From is where a probe starts.
type From int

const (
	// App is a process of the pod running as the probe's UID (AppUID unless set).
	App From = iota
	// Proxy is the sidecar: a process of the pod running as the proxy's UID.
	Proxy
	// Remote is a process in the remote namespace.
	Remote
)

// Target is a probe's destination address in a family.
type Target func(p *Pod, f Family) netip.Addr

// Destinations of probes.
var (
	ToRemote   Target = func(p *Pod, f Family) netip.Addr { return pick(f, p.Remote.IPv4, p.Remote.IPv6) }
	ToPod      Target = func(p *Pod, f Family) netip.Addr { return pick(f, p.Pod.IPv4, p.Pod.IPv6) }
	ToLoopback Target = func(_ *Pod, f Family) netip.Addr { return f.Loopback() }
)

func pick(f Family, v4, v6 netip.Addr) netip.Addr {
	if f == IPv6 {
		return v6
	}
	return v4
}

// Probe is one path through the pod and where it must land.
type Probe struct {
	Name string
	From From
	UDP  bool
	// UID is the App's user; 0 for AppUID.
	UID uint32
	// Source is the client's source address; nil for the kernel's choice.
	Source func(f Family) netip.Addr
	To     Target
	Port   uint16
	// Lands is the listener that must answer.
	Lands string
	// Redirected: the listener must see the original destination, not its own address.
	Redirected bool
}

// Verdict is what a probe found.
type Verdict struct {
	Probe
	Family Family
	Dst    netip.AddrPort
	// Landed is the listener that answered, "" when none did (Err says why).
	Landed      string
	OriginalDst netip.AddrPort
	Err         error
	// Problem says how the verdict differs from the probe's expectation; "" when it does not.
	Problem string
}

// OK reports whether the traffic went where the probe expected.
func (v Verdict) OK() bool { return v.Problem == "" }

// Send sends the probe in family f and judges where it landed.
func (p *Pod) Send(t testing.TB, f Family, pr Probe) Verdict {
	t.Helper()
	v := Verdict{Probe: pr, Family: f, Dst: netip.AddrPortFrom(pr.To(p, f), pr.Port)}
	ns := p.Pod
	var opts []netkit.DialOption
	switch pr.From {
	case Remote:
		ns = p.Remote
	case Proxy:
		opts = append(opts, netkit.AsUID(p.ProxyUID))
	default:
		uid := pr.UID
		if uid == 0 {
			uid = AppUID
		}
		opts = append(opts, netkit.AsUID(uid))
	}
	if pr.Source != nil {
		opts = append(opts, netkit.WithSource(pr.Source(f)))
	}
	exchange := ns.DialTCP
	if pr.UDP {
		exchange = ns.ExchangeUDP
	}
	reply, err := exchange(t, v.Dst, opts...)
	v.Landed, v.OriginalDst, v.Err = reply.Listener, reply.OriginalDst, err
	wantOrig := reply.Local
	if pr.Redirected {
		wantOrig = v.Dst
	}
	switch {
	case err != nil:
		v.Problem = err.Error()
	case reply.Listener != pr.Lands:
		v.Problem = fmt.Sprintf("landed on %s, want %s", reply.Listener, pr.Lands)
	case reply.OriginalDst != wantOrig:
		v.Problem = fmt.Sprintf("%s saw original destination %s, want %s", reply.Listener, reply.OriginalDst, wantOrig)
	}
	return v
}

// Check sends the probe and fails t, without stopping it, when it does not land as expected.
func (p *Pod) Check(t testing.TB, f Family, pr Probe) Verdict {
	t.Helper()
	v := p.Send(t, f, pr)
	if !v.OK() {
		t.Errorf("%s %s to %s: %s", f, pr.Name, v.Dst, v.Problem)
	}
	return v
}

package initcontainer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/initcontainer/origdst"
)

// Check is the outcome of one capture probe.
type Check struct {
	Family Family
	// Path is "outbound", "inbound" or "dns".
	Path string
	// Sent is where the probe was addressed.
	Sent netip.AddrPort
	// Skipped says why the probe could not be made; Err why it failed.
	Skipped string
	Err     error
	// Exempt is a probe that must not be captured: the proxy's own traffic.
	Exempt bool
}

func (c Check) String() string {
	switch {
	case c.Skipped != "":
		return fmt.Sprintf("%s %s: skipped: %s", c.Family, c.Path, c.Skipped)
	case c.Err != nil:
		return fmt.Sprintf("%s %s: FAILED: %v", c.Family, c.Path, c.Err)
	case c.Exempt:
		return fmt.Sprintf("%s %s: %s left alone, as the proxy's own", c.Family, c.Path, c.Sent)
	}
	return fmt.Sprintf("%s %s: %s captured", c.Family, c.Path, c.Sent)
}

// Addresses reserved for documentation (RFC 5737, RFC 3849): nothing answers there, so a probe
// that arrives anywhere was captured.
var probeTargets = map[Family][]netip.Addr{
	IPv4: {netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("203.0.113.1")},
	IPv6: {netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8:1::1")},
}

// Validate proves with real connections in the calling thread's network namespace that the rules
// of cfg capture traffic: it listens on the redirect ports itself (so the sidecar must not be
// running yet), connects out as the current user, connects to the pod's own address as the
// proxy's user (when it may act as that user), and sends a DNS query to a nameserver. Each probe
// must arrive on the right port with its original destination intact. Run as the proxy's user, as
// Kuma's validation container runs, whose own outbound traffic and DNS are never redirected, it
// proves the inbound path alone. It returns every check, and an error when any failed.
func Validate(cfg *api.TransparentProxyConfig, host Host, timeout time.Duration) ([]Check, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := validator{cfg: cfg, host: host, deadline: timeout}
	asProxy := uint32(os.Geteuid()) == host.ProxyUID
	skip := func(f Family, path string) Check {
		return Check{Family: f, Path: path, Skipped: fmt.Sprintf("runs as UID %d, the proxy's, whose own %s traffic is never redirected", host.ProxyUID, path)}
	}
	var checks []Check
	for _, f := range Families(cfg) {
		if f == IPv6 && !ipv6Available() {
			checks = append(checks, Check{Family: f, Path: "all", Skipped: noIPv6})
			continue
		}
		switch {
		case !cfg.Redirect.Outbound.Enabled:
		case asProxy:
			checks = append(checks, v.outboundAsProxy(f))
		default:
			checks = append(checks, v.outbound(f))
		}
		if cfg.Redirect.Inbound.Enabled {
			checks = append(checks, v.inbound(f))
		}
		switch {
		case !cfg.Redirect.DNS.Enabled:
		case asProxy:
			checks = append(checks, skip(f, "dns"))
		default:
			checks = append(checks, v.dns(f))
		}
	}
	var errs []error
	for _, c := range checks {
		if c.Err != nil {
			errs = append(errs, errors.New(c.String()))
		}
	}
	return checks, errors.Join(append(errs, covered(cfg, checks))...)
}

type validator struct {
	cfg      *api.TransparentProxyConfig
	host     Host
	deadline time.Duration
}

func (v validator) outbound(f Family) Check {
	c := Check{Family: f, Path: "outbound"}
	out := v.cfg.Redirect.Outbound
	uid := uint32(os.Geteuid())
	dst, ok := v.target(f, out.ExcludePortsForIPs, func(port uint16) bool {
		// Excluded ports count only where no ports are included, as in the rules.
		return len(out.IncludePorts) == 0 && v.cfg.OutboundExcluded().Contains(port) ||
			excludedForUID(out.ExcludePortsForUIDs, api.ProtocolTCP, port, uid)
	})
	if !ok {
		c.Skipped = "every probe address or port is excluded"
		return c
	}
	c.Sent = dst
	c.Err = v.probeTCP(netip.AddrPortFrom(f.Loopback().Addr(), out.Port), dst, -1)
	return c
}

func (v validator) inbound(f Family) Check {
	c := Check{Family: f, Path: "inbound"}
	if !v.cfg.Redirect.Outbound.Enabled {
		// The hairpin rule is part of the outbound rules.
		c.Skipped = "only the proxy's connections to the pod's own address can prove it from here, and with outbound redirection off they are not redirected"
		return c
	}
	local := netip.Addr{}
	pod, ok := podAddress(f)
	if !ok {
		local, pod = passthroughTarget(f)
	}
	port := uint16(0)
	for p := uint16(10000); p < 10100; p++ {
		if !v.cfg.InboundExcluded().Contains(p) {
			port = p
			break
		}
	}
	if port == 0 {
		c.Skipped = "every probe port is excluded"
		return c
	}
	// Only the proxy's connections to the pod's own address go inbound inside the namespace; traffic
	// from outside would need another namespace.
	c.Sent = netip.AddrPortFrom(pod, port)
	any := netip.IPv4Unspecified()
	if f == IPv6 {
		any = netip.IPv6Unspecified()
	}
	c.Err = v.probeTCPFrom(netip.AddrPortFrom(any, v.cfg.Redirect.Inbound.Port), local, c.Sent, int(v.host.ProxyUID))
	if errors.Is(c.Err, errNotProxy) {
		c.Skipped, c.Err = fmt.Sprintf("cannot act as the proxy's UID %d without CAP_SETUID", v.host.ProxyUID), nil
	}
	return c
}

func (v validator) dns(f Family) Check {
	c := Check{Family: f, Path: "dns"}
	dns := v.cfg.Redirect.DNS
	if excludedForUID(v.cfg.Redirect.Outbound.ExcludePortsForUIDs, api.ProtocolUDP, 53, uint32(os.Geteuid())) {
		c.Skipped = "DNS of this UID is excluded"
		return c
	}
	var server netip.Addr
	if dns.CaptureAll {
		server = probeTargets[f][0]
	} else if i := slices.IndexFunc(v.host.Nameservers, f.contains); i >= 0 {
		server = v.host.Nameservers[i]
	}
	if !server.IsValid() {
		c.Skipped = "resolv.conf names no " + f.String() + " nameserver"
		return c
	}
	c.Sent = netip.AddrPortFrom(server, 53)
	c.Err = v.probeUDP(netip.AddrPortFrom(f.Loopback().Addr(), dns.Port), c.Sent)
	return c
}

// target picks a documentation address and a port that no exclusion covers: one of the included
// ports, when only those are redirected.
func (v validator) target(f Family, excludedIPs api.CIDRs, portExcluded func(uint16) bool) (netip.AddrPort, bool) {
	ports := slices.Clone(v.cfg.Redirect.Outbound.IncludePorts)
	for port := uint16(9); len(ports) == 0 && port < 20000; port += 997 {
		ports = append(ports, port)
	}
	for _, addr := range probeTargets[f] {
		if slices.ContainsFunc(excludedIPs, func(p netip.Prefix) bool { return p.Contains(addr) }) {
			continue
		}
		for _, port := range ports {
			if !portExcluded(port) {
				return netip.AddrPortFrom(addr, port), true
			}
		}
	}
	return netip.AddrPort{}, false
}

func excludedForUID(list api.PortsForUIDsList, proto api.Protocol, port uint16, uid uint32) bool {
	return slices.ContainsFunc(list, func(e api.PortsForUIDs) bool {
		return (e.Protocol == api.ProtocolAll || e.Protocol == proto) &&
			(len(e.Ports) == 0 || e.Ports.Contains(port)) && e.UIDs.First <= uid && uid <= e.UIDs.Last
	})
}

var errNotProxy = errors.New("cannot act as the proxy's UID")

// probeTCP listens on listen, connects to dst (as uid when uid >= 0), and checks the connection
// arrived on the listener with dst as its original destination.
func (v validator) probeTCP(listen, dst netip.AddrPort, uid int) error {
	return v.probeTCPFrom(listen, netip.Addr{}, dst, uid)
}

// probeTCPFrom is probeTCP from the local address local, when valid.
func (v validator) probeTCPFrom(listen netip.AddrPort, local netip.Addr, dst netip.AddrPort, uid int) error {
	ln, err := net.ListenTCP(network("tcp", listen.Addr()), net.TCPAddrFromAddrPort(listen))
	if err != nil {
		return fmt.Errorf("listening on %s as the proxy would: %w", listen, err)
	}
	defer ln.Close()
	var conn net.Conn
	err = asFSUID(uid, func() (err error) {
		d := net.Dialer{Timeout: v.deadline}
		if local.IsValid() {
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
		}
		conn, err = d.Dial(network("tcp", dst.Addr()), dst.String())
		return err
	})
	if errors.Is(err, errNotProxy) {
		return err
	}
	if errors.Is(err, unix.ENETUNREACH) {
		return fmt.Errorf("connecting to %s: no route to it, so nothing could redirect it: give the namespace a default route", dst)
	}
	if err != nil {
		return fmt.Errorf("connecting to %s: %w: it was not redirected to port %d", dst, err, listen.Port())
	}
	defer conn.Close()
	ln.SetDeadline(time.Now().Add(v.deadline))
	accepted, err := ln.AcceptTCP()
	if err != nil {
		return fmt.Errorf("connected to %s, but not through port %d: %w", dst, listen.Port(), err)
	}
	defer accepted.Close()
	orig, err := origdst.Of(accepted)
	if err != nil {
		return err
	}
	if orig != dst {
		return fmt.Errorf("arrived on port %d with original destination %s, want %s", listen.Port(), orig, dst)
	}
	return nil
}

// probeUDP listens on listen, sends one datagram to dst, and checks it arrived there.
func (v validator) probeUDP(listen, dst netip.AddrPort) error {
	pc, err := net.ListenUDP(network("udp", listen.Addr()), net.UDPAddrFromAddrPort(listen))
	if err != nil {
		return fmt.Errorf("listening on %s as the proxy would: %w", listen, err)
	}
	defer pc.Close()
	conn, err := net.Dial(network("udp", dst.Addr()), dst.String())
	if err != nil {
		return fmt.Errorf("sending to %s: %w", dst, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("meshinit validate")); err != nil {
		return fmt.Errorf("sending to %s: %w", dst, err)
	}
	pc.SetDeadline(time.Now().Add(v.deadline))
	if _, _, err := pc.ReadFromUDPAddrPort(make([]byte, 64)); err != nil {
		return fmt.Errorf("a query to %s did not arrive on port %d: %w", dst, listen.Port(), err)
	}
	return nil
}

// asFSUID runs fn with the calling thread's filesystem UID set to uid (uid < 0: unchanged), which
// is what owns the sockets fn creates. The fsuid is per thread, so the thread stays locked while it
// is changed, and it is restored before the thread is released.
func asFSUID(uid int, fn func() error) error {
	if uid < 0 {
		return fn()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev, _ := unix.SetfsuidRetUid(uid)
	defer unix.SetfsuidRetUid(prev)
	if cur, _ := unix.SetfsuidRetUid(-1); cur != uid {
		return errNotProxy
	}
	return fn()
}

// podAddress is the first global address of the family on an interface other than lo: the
// pod's IP.
func podAddress(f Family) (netip.Addr, bool) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			p, err := netip.ParsePrefix(a.String())
			if err == nil && f.contains(p.Addr()) && p.Addr().IsGlobalUnicast() {
				return p.Addr().Unmap(), true
			}
		}
	}
	return netip.Addr{}, false
}

func network(proto string, a netip.Addr) string {
	if a.Is4() {
		return proto + "4"
	}
	return proto + "6"
}

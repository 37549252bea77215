package netkit

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// ListenUDP starts a UDP listener named name in the namespace; addr is as for ListenTCP. It
// answers each datagram with one datagram.
func (ns *Namespace) ListenUDP(t testing.TB, name string, addr netip.AddrPort, opts ...ListenOption) *Listener {
	t.Helper()
	checkListen(t, name, addr)
	cfg := listenConfig(opts)
	var pc *net.UDPConn
	var ct *conntrack
	if err := ns.Do(func() (err error) {
		if err := cfg.becomeOwner(); err != nil {
			return err
		}
		if pc, err = net.ListenUDP(network("udp", addr.Addr()), net.UDPAddrFromAddrPort(addr)); err != nil {
			return err
		}
		if err := recvPktinfo(pc, addr.Addr().Is4()); err != nil {
			pc.Close()
			return err
		}
		// The conntrack socket must be opened here to see this namespace's table.
		if ct, err = openConntrack(cfg.zones); err != nil {
			pc.Close()
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("netkit: listen udp %s in %s: %v", addr, ns.Name, err)
	}
	l := &Listener{Name: name, Addr: addrPort(pc.LocalAddr())}

	var wg sync.WaitGroup
	wg.Go(func() { l.serveUDP(t, pc, ct) })
	t.Cleanup(func() {
		closeWhileNoFork(pc)
		wg.Wait()
		ct.Close()
	})
	return l
}

// serveUDP answers datagrams one at a time; concurrent clients simply queue in the socket.
func (l *Listener) serveUDP(t testing.TB, pc *net.UDPConn, ct *conntrack) {
	buf := make([]byte, maxLine)
	oob := make([]byte, 128)
	for {
		_, oobn, _, from, err := pc.ReadMsgUDPAddrPort(buf, oob)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			t.Errorf("netkit: listener %s: read: %v", l.Name, err)
			return
		}
		peer := netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		dst, err := pktinfoDst(oob[:oobn])
		if err != nil {
			t.Errorf("netkit: listener %s: datagram from %s: %v", l.Name, peer, err)
			continue
		}
		local := netip.AddrPortFrom(dst, l.Addr.Port())
		orig, err := ct.originalDstUDP(local, peer)
		if err != nil {
			t.Errorf("netkit: listener %s: original destination of %s -> %s: %v", l.Name, peer, local, err)
			continue // no answer: the client fails too, rather than trust a wrong Reply
		}
		line := Reply{Listener: l.Name, Local: local, Peer: peer, OriginalDst: orig}.String() + "\n"
		// Answer from the very address the datagram reached: on a wildcard socket the kernel
		// would otherwise pick a source by route, which for a REDIRECTed datagram (received on
		// 127.0.0.1 or ::1) does not match the conntrack reply tuple, so it would not be
		// translated back and the client's connected socket would drop it.
		if _, _, err := pc.WriteMsgUDPAddrPort([]byte(line), pktinfoSrc(dst), from); err != nil {
			t.Errorf("netkit: listener %s: answer %s: %v", l.Name, peer, err)
		}
	}
}

// recvPktinfo asks the kernel to report each datagram's destination address.
func recvPktinfo(pc *net.UDPConn, ipv4 bool) error {
	raw, err := pc.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		if ipv4 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		}
	}); err != nil {
		return err
	}
	return serr
}

// pktinfoDst returns the destination address from a datagram's IP_PKTINFO or IPV6_PKTINFO.
func pktinfoDst(oob []byte) (netip.Addr, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, then addr, the header's destination.
			return netip.AddrFrom4([4]byte(m.Data[8:12])), nil
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo: addr, then ifindex.
			return netip.AddrFrom16([16]byte(m.Data[:16])), nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no packet info in %d bytes of control data", len(oob))
}

// pktinfoSrc makes the control message that sends a datagram from src.
func pktinfoSrc(src netip.Addr) []byte {
	if src.Is4() {
		return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: src.As4()})
	}
	return unix.PktInfo6(&unix.Inet6Pktinfo{Addr: src.As16()})
}

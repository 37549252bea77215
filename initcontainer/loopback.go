package initcontainer

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Envoy forwards inbound IPv6 traffic to the application from ::6, which, unlike 127.0.0.6, is not
// a loopback address until someone assigns it. Install assigns it to lo, marked with addrProto in
// the address's protocol field (IFA_PROTO, Linux 5.18+), so that uninstall removes the address
// only when it was ours. On older kernels the mark is not kept and uninstall leaves the address.
const (
	ifaProto  = 11 // IFA_PROTO: who added the address
	addrProto = 0x6d
)

var passthroughV6 = IPv6.passthroughSource().Addr()

// loopbackIndex is lo's interface index: the kernel gives the loopback device index 1 in every
// network namespace (LOOPBACK_IFINDEX), so no round trip is needed to look it up.
const loopbackIndex = 1

// ensurePassthroughAddress assigns ::6/128 to lo in the calling thread's namespace unless it is
// there, and reports whether it added it.
func ensurePassthroughAddress() (bool, error) {
	req := nl.NewNetlinkRequest(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfAddrmsg(unix.AF_INET6)
	msg.Prefixlen, msg.Index, msg.Scope = 128, loopbackIndex, unix.RT_SCOPE_HOST
	msg.Flags = unix.IFA_F_NODAD // nothing else can hold a loopback address
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, passthroughV6.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, passthroughV6.AsSlice()))
	req.AddData(nl.NewRtAttr(ifaProto, []byte{addrProto}))
	err := routeRequest(req)
	switch {
	case errors.Is(err, unix.EEXIST):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("assigning %s to lo: %w", passthroughV6, err)
	}
	return true, nil
}

// routeRequest sends one rtnetlink request that asks for an acknowledgement and returns the
// kernel's verdict on it, over a plain blocking socket: the netlink library's own socket goes
// through the runtime's poller, which a one-shot install would start for nothing.
func routeRequest(req *nl.NetlinkRequest) error {
	fd, err := netlinkSocket(unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	var verdict error
	err = netlinkAcks(fd, func(seq uint32, errno syscall.Errno) bool {
		if seq != req.Seq {
			return false
		}
		if errno != 0 {
			verdict = errno
		}
		return true
	})
	if err != nil {
		return err
	}
	return verdict
}

// removePassthroughAddress removes ::6/128 from lo when install added it, and reports whether it
// did.
func removePassthroughAddress() (bool, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETADDR, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfAddrmsg(unix.AF_INET6))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR)
	if err != nil {
		return false, fmt.Errorf("listing the addresses of lo: %w", err)
	}
	for _, m := range msgs {
		if len(m) < unix.SizeofIfAddrmsg {
			continue
		}
		hdr := nl.DeserializeIfAddrmsg(m)
		if hdr.Index != loopbackIndex || hdr.Prefixlen != 128 {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfAddrmsg:])
		if err != nil {
			return false, err
		}
		var addr netip.Addr
		ours := false
		for _, a := range attrs {
			switch a.Attr.Type {
			case unix.IFA_ADDRESS:
				addr, _ = netip.AddrFromSlice(a.Value)
			case ifaProto:
				ours = len(a.Value) == 1 && a.Value[0] == addrProto
			}
		}
		if addr != passthroughV6 || !ours {
			continue
		}
		del := nl.NewNetlinkRequest(unix.RTM_DELADDR, unix.NLM_F_ACK)
		del.AddData(hdr)
		del.AddData(nl.NewRtAttr(unix.IFA_LOCAL, passthroughV6.AsSlice()))
		if err := routeRequest(del); err != nil {
			return false, fmt.Errorf("removing %s from lo: %w", passthroughV6, err)
		}
		return true, nil
	}
	return false, nil
}

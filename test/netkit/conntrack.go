package netkit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// conntrack asks one namespace's connection tracking table about flows, over ctnetlink.
type conntrack struct {
	sock *nl.SocketHandle
	// zones are searched in order: a flow lives in the zone a CT rule put it in, 0 by default.
	zones []uint16
}

// openConntrack must run inside the namespace (in Do): a netlink socket sees the conntrack table
// of the namespace it was created in.
func openConntrack(zones []uint16) (*conntrack, error) {
	s, err := nl.GetNetlinkSocketAt(netns.None(), netns.None(), unix.NETLINK_NETFILTER)
	if err != nil {
		return nil, err
	}
	tv := unix.NsecToTimeval(connTimeout.Nanoseconds())
	if err := s.SetReceiveTimeout(&tv); err != nil {
		s.Close()
		return nil, err
	}
	return &conntrack{sock: &nl.SocketHandle{Socket: s}, zones: append([]uint16{0}, zones...)}, nil
}

func (c *conntrack) Close() { c.sock.Close() }

// originalDstUDP finds the destination a datagram from peer to local had before NAT. UDP sockets
// have no SO_ORIGINAL_DST, so it looks up the flow whose reply tuple runs from local to peer and
// takes the destination of its original tuple. It asks for that one flow, a hash lookup, rather
// than dump the table: a dump walks the whole host-wide hash table, even when this namespace's
// share is empty. No flow in any zone means conntrack is not active in the namespace
// at all, so nothing can have been NATed.
func (c *conntrack) originalDstUDP(local, peer netip.AddrPort) (netip.AddrPort, error) {
	for _, zone := range c.zones {
		orig, found, err := c.originalDstInZone(local, peer, zone)
		if err != nil || found {
			return orig, err
		}
	}
	return local, nil
}

func (c *conntrack) originalDstInZone(local, peer netip.AddrPort, zone uint16) (netip.AddrPort, bool, error) {
	family, srcType, dstType := unix.AF_INET6, nl.CTA_IP_V6_SRC, nl.CTA_IP_V6_DST
	if local.Addr().Is4() {
		family, srcType, dstType = unix.AF_INET, nl.CTA_IP_V4_SRC, nl.CTA_IP_V4_DST
	}
	// The kernel flags even this single answer NLM_F_MULTI yet sends no NLMSG_DONE after it; the
	// ACK asked for here is what ends the exchange.
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_CTNETLINK<<8|nl.IPCTNL_MSG_CT_GET, unix.NLM_F_ACK)
	req.Sockets = map[int]*nl.SocketHandle{unix.NETLINK_NETFILTER: c.sock}
	req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(family), Version: nl.NFNETLINK_V0})
	reply := nl.NewRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_REPLY, nil)
	ip := reply.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_IP, nil)
	ip.AddRtAttr(srcType, local.Addr().AsSlice())
	ip.AddRtAttr(dstType, peer.Addr().AsSlice())
	proto := reply.AddRtAttr(unix.NLA_F_NESTED|nl.CTA_TUPLE_PROTO, nil)
	proto.AddRtAttr(nl.CTA_PROTO_NUM, []byte{unix.IPPROTO_UDP})
	proto.AddRtAttr(nl.CTA_PROTO_SRC_PORT, nl.BEUint16Attr(local.Port()))
	proto.AddRtAttr(nl.CTA_PROTO_DST_PORT, nl.BEUint16Attr(peer.Port()))
	req.AddData(reply)
	if zone != 0 {
		req.AddData(nl.NewRtAttr(nl.CTA_ZONE, nl.BEUint16Attr(zone)))
	}

	msgs, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	if errors.Is(err, unix.ENOENT) {
		return netip.AddrPort{}, false, nil
	}
	if err != nil {
		return netip.AddrPort{}, false, fmt.Errorf("conntrack get: %w", err)
	}
	if len(msgs) != 1 || len(msgs[0]) < nl.SizeofNfgenmsg {
		return netip.AddrPort{}, false, fmt.Errorf("conntrack get: %d answers", len(msgs))
	}
	orig, err := attr(msgs[0][nl.SizeofNfgenmsg:], nl.CTA_TUPLE_ORIG)
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	tupleIP, err := attr(orig, nl.CTA_TUPLE_IP)
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	dstIP, err := attr(tupleIP, uint16(dstType))
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	tupleProto, err := attr(orig, nl.CTA_TUPLE_PROTO)
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	dstPort, err := attr(tupleProto, nl.CTA_PROTO_DST_PORT)
	if err != nil {
		return netip.AddrPort{}, false, err
	}
	addr, ok := netip.AddrFromSlice(dstIP)
	if !ok || len(dstPort) != 2 {
		return netip.AddrPort{}, false, fmt.Errorf("conntrack get: malformed original destination %x port %x", dstIP, dstPort)
	}
	return netip.AddrPortFrom(addr, binary.BigEndian.Uint16(dstPort)), true, nil
}

// attr returns the value of the netlink attribute of type typ in b, ignoring the nested and
// byte-order flags that the kernel sets in the type.
func attr(b []byte, typ uint16) ([]byte, error) {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return nil, fmt.Errorf("conntrack get: %w", err)
	}
	for _, a := range attrs {
		if a.Attr.Type&nl.NLA_TYPE_MASK == typ {
			return a.Value, nil
		}
	}
	return nil, fmt.Errorf("conntrack get: no attribute %d", typ)
}

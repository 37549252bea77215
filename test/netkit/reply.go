package netkit

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// The protocol, the same for TCP and UDP: the client sends one line (request); the listener
// answers with one line of space-separated key=value pairs,
//
//	listener=NAME local=ADDR:PORT peer=ADDR:PORT orig=ADDR:PORT
//
// and then closes the connection (TCP) or waits for the next datagram (UDP). IPv6 addresses are
// written in brackets, as netip.AddrPort prints them.
const request = "hello\n"

// maxLine bounds what either side reads, so a stray peer cannot make it buffer without end.
const maxLine = 512

// Reply is what a listener saw, as the client received it.
type Reply struct {
	Listener    string         // name of the listener that answered: where the traffic landed
	Local       netip.AddrPort // the listener socket's local address for this connection
	Peer        netip.AddrPort // the client's address as the listener saw it
	OriginalDst netip.AddrPort // the destination before NAT; equals Local when not redirected
}

// String formats r as the protocol line, without the newline.
func (r Reply) String() string {
	return fmt.Sprintf("listener=%s local=%s peer=%s orig=%s", r.Listener, r.Local, r.Peer, r.OriginalDst)
}

func parseReply(line string) (Reply, error) {
	fields := map[string]string{}
	for f := range strings.FieldsSeq(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Reply{}, fmt.Errorf("netkit: malformed reply %q", line)
		}
		fields[k] = v
	}
	r := Reply{Listener: fields["listener"]}
	if r.Listener == "" || len(fields) != 4 {
		return Reply{}, fmt.Errorf("netkit: malformed reply %q", line)
	}
	for k, dst := range map[string]*netip.AddrPort{"local": &r.Local, "peer": &r.Peer, "orig": &r.OriginalDst} {
		ap, err := netip.ParseAddrPort(fields[k])
		if err != nil {
			return Reply{}, fmt.Errorf("netkit: reply %q: %s: %w", line, k, err)
		}
		*dst = ap
	}
	return r, nil
}

// addrPort converts a socket address from package net; net gives IPv4 addresses in their 16-byte
// form, which netip would keep as IPv4-mapped IPv6.
func addrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// network names the socket family for addr: listeners and clients are single-family, so an IPv6
// socket never sees IPv4 traffic as mapped addresses.
func network(proto string, addr netip.Addr) string {
	if addr.Unmap().Is4() {
		return proto + "4"
	}
	return proto + "6"
}

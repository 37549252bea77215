package initcontainer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// The nftables backend's messages travel over plain blocking netlink sockets of ours: the
// transaction, spelled by nftBatch (nftmsg.go), and the reads, spelled and parsed by google/nftables
// or by the dumps below. The library's own socket (mdlayher/socket) starts a goroutine for each
// system call to watch for cancellation, and the library asks for an acknowledgement and an echo
// of every table, chain, set and rule it adds: some 250 system calls for the default rules, each
// with a goroutine handoff, which took most of an install's time. A batch asks for one
// acknowledgement, the last message's: the kernel reports every message that fails whatever its
// flags, and processes the whole batch within the send. Reads go through nftExchange, one request
// at a time.

// nftTimeout bounds every wait for the kernel's answer.
const nftTimeout = 10 * time.Second

// nftSocket opens a netlink socket to nf_tables in the calling thread's network namespace.
func nftSocket() (int, error) {
	fd, err := netlinkSocket(unix.NETLINK_NETFILTER)
	if err != nil {
		return -1, fmt.Errorf("nftables: %w", err)
	}
	return fd, nil
}

// netlinkSocket opens a blocking netlink socket of protocol in the calling thread's network
// namespace, whose every receive waits at most nftTimeout.
func netlinkSocket(protocol int) (int, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, protocol)
	if err != nil {
		return -1, err
	}
	tv := unix.NsecToTimeval(nftTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// nftSend writes messages in one datagram, their PID left to the kernel.
func nftSend(fd int, msgs []netlink.Message) error {
	size := 0
	for _, m := range msgs {
		size += int(m.Header.Length)
	}
	buf := make([]byte, 0, size)
	for _, m := range msgs {
		m.Header.PID = 0
		b, err := m.MarshalBinary()
		if err != nil {
			return err
		}
		buf = append(buf, b...)
	}
	return unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// receiveBuffers hold the kernel's answers: an install reads half a dozen, and a buffer of its own
// for each would be fresh memory to fault in every time.
var receiveBuffers = sync.Pool{New: func() any { return new([64 << 10]byte) }}

// receiveBuffer is a buffer from receiveBuffers and the function that gives it back.
func receiveBuffer() ([]byte, func()) {
	b := receiveBuffers.Get().(*[64 << 10]byte)
	return b[:], func() { receiveBuffers.Put(b) }
}

// netlinkReceive reads one datagram's messages into buf, which bounds it.
func netlinkReceive(fd int, buf []byte) ([]syscall.NetlinkMessage, error) {
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return nil, fmt.Errorf("netlink: reading the kernel's answer: %w", err)
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return nil, fmt.Errorf("netlink: the kernel's answer: %w", err)
	}
	return msgs, nil
}

// netlinkAcks reads the kernel's acknowledgements on fd, handing each one's sequence number and
// error (0: done) to fn until fn says it has had the last it waits for.
func netlinkAcks(fd int, fn func(seq uint32, errno syscall.Errno) (last bool)) error {
	buf, release := receiveBuffer()
	defer release()
	for {
		msgs, err := netlinkReceive(fd, buf)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if fn(m.Header.Seq, syscall.Errno(-int32(binary.NativeEndian.Uint32(m.Data)))) {
				return nil
			}
		}
	}
}

// nftExchange sends one request and returns the kernel's answer to it whole, as the library's
// connection reads it: every part of a dump and its end, or the one answer or acknowledgement.
func nftExchange(fd int, req []netlink.Message) ([]netlink.Message, error) {
	if len(req) != 1 {
		return nil, fmt.Errorf("nftables: %d requests at once, want one", len(req))
	}
	r := req[0]
	if err := nftSend(fd, req); err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	buf, release := receiveBuffer()
	defer release()
	var out []netlink.Message
	for {
		msgs, err := netlinkReceive(fd, buf)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.Header.Seq != r.Header.Sequence {
				continue // an answer to an earlier request that gave up
			}
			out = append(out, netlink.Message{Header: netlink.Header{Length: m.Header.Len, Type: netlink.HeaderType(m.Header.Type),
				Flags: netlink.HeaderFlags(m.Header.Flags), Sequence: r.Header.Sequence, PID: r.Header.PID}, Data: slices.Clone(m.Data)}) // buf is read into again
			done := m.Header.Type == unix.NLMSG_DONE || m.Header.Type == unix.NLMSG_ERROR ||
				r.Header.Flags&netlink.Dump == 0 && r.Header.Flags&netlink.Acknowledge == 0
			if done {
				return out, nil
			}
		}
	}
}

// nftOurRuleCounts counts the rules of each chain of our table in each family over one plain
// socket, a dump per family filtered by the kernel to our table (a filtered dump stops at the first
// table of the name, so one dump cannot cover both families).
func nftOurRuleCounts(families []Family) (map[Family]map[string]int, error) {
	fd, err := nftSocket()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	out := map[Family]map[string]int{}
	for _, f := range families {
		req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETRULE, unix.NLM_F_DUMP)
		req.AddData(&nl.Nfgenmsg{NfgenFamily: uint8(nftProto(f)), Version: nl.NFNETLINK_V0})
		req.AddData(nl.NewRtAttr(unix.NFTA_RULE_TABLE, nl.ZeroTerminated(nftTable)))
		var counts map[string]int
		err := nftDumpOn(fd, req, func() { counts = map[string]int{} }, func(_ uint8, attrs nftAttrs) {
			counts[cString(attrs.get(unix.NFTA_RULE_CHAIN))]++
		})
		if err != nil {
			return nil, fmt.Errorf("%s: nftables: reading our rules back: %w", f, err)
		}
		out[f] = counts
	}
	return out, nil
}

// nftListTables lists the tables of every family, in one dump over a plain socket.
func nftListTables() ([]nftTableRef, error) {
	fd, err := nftSocket()
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETTABLE, unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.NFPROTO_UNSPEC, Version: nl.NFNETLINK_V0})
	var out []nftTableRef
	err = nftDumpOn(fd, req, func() { out = nil }, func(family uint8, attrs nftAttrs) {
		out = append(out, nftTableRef{nftables.TableFamily(family), cString(attrs.get(unix.NFTA_TABLE_NAME))})
	})
	if err != nil {
		return nil, fmt.Errorf("nftables: listing tables: %w", err)
	}
	return out, nil
}

// nftAttrs are a dumped object's attributes as the kernel sent them, in the receive buffer: they,
// and what get returns, are valid only while the dump's callback runs. Looking up the one or two
// attributes a reader wants in place spares a copy and a map per object.
type nftAttrs []byte

// get returns the value of the attribute of type typ, or nil.
func (a nftAttrs) get(typ uint16) []byte {
	for len(a) >= unix.SizeofNlAttr {
		n := int(binary.NativeEndian.Uint16(a))
		if n < unix.SizeofNlAttr || n > len(a) {
			return nil // malformed: the kernel never sends this
		}
		if binary.NativeEndian.Uint16(a[2:])&nl.NLA_TYPE_MASK == typ {
			return a[unix.SizeofNlAttr:n:n]
		}
		a = a[min(len(a), (n+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1)):]
	}
	return nil
}

// nftDumpOn runs req, an nf_tables dump, on fd and hands each object's family and attributes to fn.
// A dump that overlaps another process's commit is marked interrupted, as the ruleset's generation
// is per namespace: it is asked again, after reset.
func nftDumpOn(fd int, req *nl.NetlinkRequest, reset func(), fn func(family uint8, attrs nftAttrs)) error {
	buf, release := receiveBuffer()
	defer release()
	for range 20 {
		reset()
		interrupted, err := nftDumpOnce(fd, req, buf, fn)
		if err != nil || !interrupted {
			return err
		}
	}
	return errors.New("every dump was interrupted by another change")
}

func nftDumpOnce(fd int, req *nl.NetlinkRequest, buf []byte, fn func(uint8, nftAttrs)) (interrupted bool, err error) {
	req.Seq++
	if err := unix.Sendto(fd, req.Serialize(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, err
	}
	for {
		msgs, err := netlinkReceive(fd, buf)
		if err != nil {
			return false, err
		}
		for _, m := range msgs {
			if m.Header.Seq != req.Seq {
				continue // an answer to an interrupted dump
			}
			interrupted = interrupted || m.Header.Flags&unix.NLM_F_DUMP_INTR != 0
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return interrupted, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
						return false, syscall.Errno(-errno)
					}
				}
				return interrupted, nil
			}
			if len(m.Data) < nl.SizeofNfgenmsg {
				continue
			}
			fn(m.Data[0], nftAttrs(m.Data[nl.SizeofNfgenmsg:]))
		}
	}
}

package netkit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultTimeout bounds a whole client exchange (connect, send, receive) unless WithTimeout says
// otherwise. It leaves room for one SYN retransmission (after 1s), which an IPv6 REJECT needs: the
// first ICMPv6 error comes back over the veth while connect(2) still holds the socket, so the
// kernel drops it (TcpExtLockDroppedIcmps) and only the answer to the retransmission refuses the
// connection. IPv4, and `--reject-with tcp-reset`, refuse at once.
const DefaultTimeout = 2 * time.Second

// DialOption configures a client exchange.
type DialOption func(*dialConfig)

type dialConfig struct {
	uid, gid int // -1: keep the thread's own, root's
	source   netip.Addr
	timeout  time.Duration
	zones    []uint16
}

// AsUID makes the client's socket owned by uid, so that iptables' `-m owner --uid-owner` matches
// it, for every packet of the socket's life.
func AsUID(uid uint32) DialOption { return func(c *dialConfig) { c.uid = int(uid) } }

// AsGID makes the client's socket owned by group gid, for `-m owner --gid-owner`.
func AsGID(gid uint32) DialOption { return func(c *dialConfig) { c.gid = int(gid) } }

// WithSource binds the client to a source address (port chosen by the kernel).
func WithSource(addr netip.Addr) DialOption { return func(c *dialConfig) { c.source = addr } }

// WithTimeout replaces DefaultTimeout.
func WithTimeout(d time.Duration) DialOption { return func(c *dialConfig) { c.timeout = d } }

// DialTCP connects from the namespace to dst, sends the request line and returns the listener's
// Reply. Network outcomes (refused, unreachable, timed out, closed without answer) are returned
// as errors, since tests assert that some traffic is blocked. Failures of the kit itself (cannot
// enter the namespace, malformed reply) also fail t, so they can never pass for blocked traffic.
// It may be called from any goroutine.
func (ns *Namespace) DialTCP(t testing.TB, dst netip.AddrPort, opts ...DialOption) (Reply, error) {
	t.Helper()
	return ns.exchange(t, "tcp", dst, opts)
}

// ExchangeUDP sends the request line in one datagram from the namespace to dst and returns the
// Reply from the answering datagram; errors are as for DialTCP. There is no retry: a lost
// datagram is a timeout.
func (ns *Namespace) ExchangeUDP(t testing.TB, dst netip.AddrPort, opts ...DialOption) (Reply, error) {
	t.Helper()
	return ns.exchange(t, "udp", dst, opts)
}

func (ns *Namespace) exchange(t testing.TB, proto string, dst netip.AddrPort, opts []DialOption) (Reply, error) {
	t.Helper()
	cfg := dialConfig{uid: -1, gid: -1, timeout: DefaultTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	var line string
	var netErr error
	if err := ns.Do(func() error {
		if err := cfg.becomeOwner(); err != nil {
			return err
		}
		line, netErr = cfg.roundTrip(proto, dst)
		return nil
	}); err != nil {
		t.Errorf("netkit: %s client in %s: %v", proto, ns.Name, err)
		return Reply{}, err
	}
	if netErr != nil {
		return Reply{}, netErr
	}
	r, err := parseReply(line)
	if err != nil {
		t.Errorf("%v", err)
	}
	return r, err
}

// becomeOwner sets the calling thread's filesystem UID and GID. socket(2) records the creating
// thread's credentials in the socket's file, and `-m owner --uid-owner/--gid-owner` match that
// file's fsuid/fsgid (sk_uid, which uid routing uses, is taken from the fsuid as well). On Linux
// they are per thread (unlike setuid, which Go applies to all threads), and Do throws the thread
// away afterwards. Both are checked, because setfsuid reports no error when it refuses.
func (c dialConfig) becomeOwner() error {
	if c.gid >= 0 {
		unix.SetfsgidRetGid(c.gid)
		if got, _ := unix.SetfsgidRetGid(-1); got != c.gid {
			return fmt.Errorf("setfsgid %d: still %d", c.gid, got)
		}
	}
	if c.uid >= 0 {
		unix.SetfsuidRetUid(c.uid)
		if got, _ := unix.SetfsuidRetUid(-1); got != c.uid {
			return fmt.Errorf("setfsuid %d: still %d", c.uid, got)
		}
	}
	return nil
}

// roundTrip runs on Do's thread. net.Dialer creates the socket with a plain socket(2) on the
// calling goroutine, locked to this thread, so it gets this thread's namespace and owner; the
// connect may then finish through the netpoller, but the owner was fixed at creation.
func (c dialConfig) roundTrip(proto string, dst netip.AddrPort) (string, error) {
	deadline := time.Now().Add(c.timeout)
	d := net.Dialer{Deadline: deadline}
	if c.source.IsValid() {
		src := netip.AddrPortFrom(c.source, 0)
		if proto == "tcp" {
			d.LocalAddr = net.TCPAddrFromAddrPort(src)
		} else {
			d.LocalAddr = net.UDPAddrFromAddrPort(src)
		}
	}
	conn, err := d.Dial(network(proto, dst.Addr()), dst.String())
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return "", err
	}
	if _, err := io.WriteString(conn, request); err != nil {
		return "", err
	}
	return readLine(conn)
}

// IsTimeout reports whether a client's error is a timeout, the sign of traffic silently dropped
// on the way. A timeout while connecting matches context.DeadlineExceeded, one while reading
// os.ErrDeadlineExceeded; both are net.Error timeouts.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

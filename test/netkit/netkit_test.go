package netkit_test

import (
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/prereq"
	"golang.org/x/sys/unix"
)

// family is one IP version's view of a Net.
type family struct {
	name     string
	addr     func(*netkit.Namespace) netip.Addr
	any      netip.Addr // the unspecified address
	loopback netip.Addr
	iptables string
}

var families = []family{
	{
		name:     "IPv4",
		addr:     func(ns *netkit.Namespace) netip.Addr { return ns.IPv4 },
		any:      netip.IPv4Unspecified(),
		loopback: netip.AddrFrom4([4]byte{127, 0, 0, 1}),
		iptables: "iptables",
	},
	{
		name:     "IPv6",
		addr:     func(ns *netkit.Namespace) netip.Addr { return ns.IPv6 },
		any:      netip.IPv6Unspecified(),
		loopback: netip.IPv6Loopback(),
		iptables: "ip6tables",
	},
}

// eachFamily runs fn, in parallel, once per IP family, each with a Net of its own: separate
// namespaces share nothing, so the subtests cannot disturb one another.
func eachFamily(t *testing.T, fn func(t *testing.T, f family, n *netkit.Net)) {
	for _, f := range families {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			n := netkit.New(t)
			prereq.Binary(t, f.iptables)
			fn(t, f, n)
		})
	}
}

func at(addr netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(addr, port) }

// wantReply checks a successful exchange against the expected Reply.
func wantReply(t *testing.T, got netkit.Reply, err error, want netkit.Reply) {
	t.Helper()
	if err != nil {
		t.Fatalf("exchange failed: %v (want %v)", err, want)
	}
	if got != want {
		t.Fatalf("reply\n got %v\nwant %v", got, want)
	}
}

// wantPeer checks a successful exchange where the client's port is not known in advance.
func wantPeer(t *testing.T, got netkit.Reply, err error, want netkit.Reply, peer netip.Addr) {
	t.Helper()
	if err == nil && got.Peer.Addr() == peer && got.Peer.Port() != 0 {
		want.Peer = got.Peer
	}
	wantReply(t, got, err, want)
}

func TestTCP(t *testing.T) {
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		remote, pod := f.addr(n.Remote), f.addr(n.Pod)
		specific := n.Remote.ListenTCP(t, "remote", at(remote, 0))
		wildcard := n.Remote.ListenTCP(t, "remote-any", at(f.any, 0))
		if specific.Addr.Addr() != remote || specific.Addr.Port() == 0 || wildcard.Addr.Addr() != f.any {
			t.Fatalf("bound addresses %v and %v", specific.Addr, wildcard.Addr)
		}
		for range 3 { // one listener, several sequential clients
			r, err := n.Pod.DialTCP(t, specific.Addr)
			wantPeer(t, r, err, netkit.Reply{Listener: "remote", Local: specific.Addr, OriginalDst: specific.Addr}, pod)
		}
		dst := at(remote, wildcard.Addr.Port())
		r, err := n.Pod.DialTCP(t, dst)
		wantPeer(t, r, err, netkit.Reply{Listener: "remote-any", Local: dst, OriginalDst: dst}, pod)
	})
}

func TestUDP(t *testing.T) {
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		remote, pod := f.addr(n.Remote), f.addr(n.Pod)
		specific := n.Remote.ListenUDP(t, "remote", at(remote, 0))
		wildcard := n.Remote.ListenUDP(t, "remote-any", at(f.any, 0))
		for range 3 {
			r, err := n.Pod.ExchangeUDP(t, specific.Addr)
			wantPeer(t, r, err, netkit.Reply{Listener: "remote", Local: specific.Addr, OriginalDst: specific.Addr}, pod)
		}
		dst := at(remote, wildcard.Addr.Port())
		r, err := n.Pod.ExchangeUDP(t, dst)
		wantPeer(t, r, err, netkit.Reply{Listener: "remote-any", Local: dst, OriginalDst: dst}, pod)
	})
}

func TestLoopback(t *testing.T) {
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		for _, ns := range []*netkit.Namespace{n.Pod, n.Remote} {
			tcp := ns.ListenTCP(t, "lo-tcp", at(f.loopback, 0))
			r, err := ns.DialTCP(t, tcp.Addr)
			wantPeer(t, r, err, netkit.Reply{Listener: "lo-tcp", Local: tcp.Addr, OriginalDst: tcp.Addr}, f.loopback)
			udp := ns.ListenUDP(t, "lo-udp", at(f.loopback, 0))
			r, err = ns.ExchangeUDP(t, udp.Addr)
			wantPeer(t, r, err, netkit.Reply{Listener: "lo-udp", Local: udp.Addr, OriginalDst: udp.Addr}, f.loopback)
		}
	})
}

// TestRedirect validates the original-destination lookups: SO_ORIGINAL_DST for TCP and the
// conntrack table for UDP.
func TestRedirect(t *testing.T) {
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		remote, pod := f.addr(n.Remote), f.addr(n.Pod)
		for _, proto := range []string{"tcp", "udp"} {
			t.Run(proto, func(t *testing.T) {
				listen, exchange := n.Remote.ListenTCP, n.Pod.DialTCP
				podListen := n.Pod.ListenTCP
				if proto == "udp" {
					listen, exchange, podListen = n.Remote.ListenUDP, n.Pod.ExchangeUDP, n.Pod.ListenUDP
				}
				target := listen(t, "remote", at(remote, 0)).Addr
				proxy := podListen(t, "proxy", at(f.any, 0)).Addr

				// Before the rule, traffic reaches the remote listener.
				r, err := exchange(t, target)
				wantPeer(t, r, err, netkit.Reply{Listener: "remote", Local: target, OriginalDst: target}, pod)

				n.Pod.Run(t, f.iptables, "-t", "nat", "-A", "OUTPUT", "-p", proto, "-d", remote.String(),
					"--dport", fmt.Sprint(target.Port()), "-j", "REDIRECT", "--to-ports", fmt.Sprint(proxy.Port()))
				// REDIRECT from OUTPUT rewrites the destination to loopback.
				local := at(f.loopback, proxy.Port())
				for range 3 {
					r, err = exchange(t, target)
					wantPeer(t, r, err, netkit.Reply{Listener: "proxy", Local: local, OriginalDst: target}, pod)
				}

				// Direct traffic, now that conntrack is active here, still reports no NAT.
				r, err = exchange(t, local)
				wantPeer(t, r, err, netkit.Reply{Listener: "proxy", Local: local, OriginalDst: local}, f.loopback)
			})
		}
	})
}

// TestOwner proves that AsUID and AsGID clients own their sockets as far as iptables' owner match
// is concerned, and that other clients are not affected.
func TestOwner(t *testing.T) {
	const blockedUID, blockedGID, otherID = 1234, 4321, 1235
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		tcp := n.Remote.ListenTCP(t, "remote-tcp", at(f.addr(n.Remote), 0))
		udp := n.Remote.ListenUDP(t, "remote-udp", at(f.addr(n.Remote), 0))
		// Also exercises RunInput, with the rules in iptables-restore form.
		n.Pod.RunInput(t, fmt.Sprintf(`*filter
-A OUTPUT -p tcp -m owner --uid-owner %[1]d -j REJECT
-A OUTPUT -p udp -m owner --uid-owner %[1]d -j REJECT
-A OUTPUT -p tcp -m owner --gid-owner %[2]d -j REJECT
-A OUTPUT -p udp -m owner --gid-owner %[2]d -j REJECT
COMMIT
`, blockedUID, blockedGID), f.iptables+"-restore", "--noflush")

		for _, c := range []struct {
			name    string
			opts    []netkit.DialOption
			blocked bool
		}{
			{"default", nil, false},
			{"uid 0", []netkit.DialOption{netkit.AsUID(0)}, false},
			{"other uid", []netkit.DialOption{netkit.AsUID(otherID), netkit.AsGID(otherID)}, false},
			{"blocked uid", []netkit.DialOption{netkit.AsUID(blockedUID)}, true},
			{"blocked gid", []netkit.DialOption{netkit.AsGID(blockedGID)}, true},
		} {
			t.Run(c.name, func(t *testing.T) {
				r, err := n.Pod.DialTCP(t, tcp.Addr, c.opts...)
				checkOwner(t, "tcp", r, err, c.blocked)
				r, err = n.Pod.ExchangeUDP(t, udp.Addr, c.opts...)
				checkOwner(t, "udp", r, err, c.blocked)
			})
		}
	})
}

// TestOwnerAfterConnect shows that the owner sticks to the socket, not to the thread that made
// it: the last ACK of the handshake leaves from softirq context when the SYN-ACK arrives, while
// the client waits in the netpoller, and the owner match still catches it.
func TestOwnerAfterConnect(t *testing.T) {
	const uid = 1236
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		tcp := n.Remote.ListenTCP(t, "remote", at(f.addr(n.Remote), 0))
		n.Pod.Run(t, f.iptables, "-A", "OUTPUT", "-p", "tcp", "-m", "owner", "--uid-owner", fmt.Sprint(uid),
			"-m", "conntrack", "--ctstate", "ESTABLISHED", "-j", "REJECT", "--reject-with", "tcp-reset")
		if r, err := n.Pod.DialTCP(t, tcp.Addr, netkit.AsUID(uid)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("got %v, %v; want the handshake's ACK reset", r, err)
		}
		r, err := n.Pod.DialTCP(t, tcp.Addr)
		wantPeer(t, r, err, netkit.Reply{Listener: "remote", Local: tcp.Addr, OriginalDst: tcp.Addr}, f.addr(n.Pod))
	})
}

// checkOwner tells a REJECT from other failures. TCP gets the ICMP error as ECONNREFUSED (after
// about 1s with IPv6, see netkit.DefaultTimeout); a UDP send that the sender's own OUTPUT chain
// drops (REJECT drops too) fails at once with EPERM.
func checkOwner(t *testing.T, proto string, r netkit.Reply, err error, blocked bool) {
	t.Helper()
	rejected := syscall.ECONNREFUSED
	if proto == "udp" {
		rejected = syscall.EPERM
	}
	switch {
	case blocked && !errors.Is(err, rejected):
		t.Errorf("%s: got %v, %v; want %v", proto, r, err, rejected)
	case !blocked && err != nil:
		t.Errorf("%s: %v, want a reply", proto, err)
	}
}

func TestErrorsAreReturned(t *testing.T) {
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		// The ports of closed listeners are free, so nothing answers there.
		var closedTCP, closedUDP netip.AddrPort
		t.Run("listen", func(t *testing.T) {
			closedTCP = n.Remote.ListenTCP(t, "closed", at(f.addr(n.Remote), 0)).Addr
			closedUDP = n.Remote.ListenUDP(t, "closed", at(f.addr(n.Remote), 0)).Addr
		})
		if _, err := n.Pod.DialTCP(t, closedTCP); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("tcp to a closed port: %v, want ECONNREFUSED", err)
		}
		if _, err := n.Pod.ExchangeUDP(t, closedUDP); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("udp to a closed port: %v, want ECONNREFUSED", err)
		}

		// Dropped on arrival, so that the sender has no way to know; a drop in the sender's own
		// OUTPUT chain would fail a UDP send at once with EPERM.
		n.Remote.Run(t, f.iptables, "-A", "INPUT", "-s", f.addr(n.Pod).String(), "-j", "DROP")
		if _, err := n.Pod.DialTCP(t, closedTCP, netkit.WithTimeout(100*time.Millisecond)); !netkit.IsTimeout(err) {
			t.Errorf("dropped tcp: %v, want a timeout", err)
		}
		if _, err := n.Pod.ExchangeUDP(t, closedUDP, netkit.WithTimeout(100*time.Millisecond)); !netkit.IsTimeout(err) {
			t.Errorf("dropped udp: %v, want a timeout", err)
		}
	})
}

func TestWithSource(t *testing.T) {
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		pod := f.addr(n.Pod)
		tcp := n.Pod.ListenTCP(t, "local-tcp", at(f.any, 0))
		udp := n.Pod.ListenUDP(t, "local-udp", at(f.any, 0))
		tcpDst, udpDst := at(f.loopback, tcp.Addr.Port()), at(f.loopback, udp.Addr.Port())

		r, err := n.Pod.DialTCP(t, tcpDst)
		wantPeer(t, r, err, netkit.Reply{Listener: "local-tcp", Local: tcpDst, OriginalDst: tcpDst}, f.loopback)
		r, err = n.Pod.DialTCP(t, tcpDst, netkit.WithSource(pod))
		wantPeer(t, r, err, netkit.Reply{Listener: "local-tcp", Local: tcpDst, OriginalDst: tcpDst}, pod)
		r, err = n.Pod.ExchangeUDP(t, udpDst, netkit.WithSource(pod))
		wantPeer(t, r, err, netkit.Reply{Listener: "local-udp", Local: udpDst, OriginalDst: udpDst}, pod)
	})
}

func TestConcurrentClients(t *testing.T) {
	eachFamily(t, func(t *testing.T, f family, n *netkit.Net) {
		tcp := n.Remote.ListenTCP(t, "remote-tcp", at(f.addr(n.Remote), 0))
		udp := n.Remote.ListenUDP(t, "remote-udp", at(f.addr(n.Remote), 0))
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Go(func() {
				for range 4 {
					if r, err := n.Pod.DialTCP(t, tcp.Addr, netkit.AsUID(uint32(1000+i))); err != nil || r.Listener != "remote-tcp" {
						t.Errorf("tcp client %d: %v %v", i, r, err)
					}
					if r, err := n.Pod.ExchangeUDP(t, udp.Addr, netkit.AsUID(uint32(1000+i))); err != nil || r.Listener != "remote-udp" {
						t.Errorf("udp client %d: %v %v", i, r, err)
					}
				}
			})
		}
		wg.Wait()
	})
}

func TestDo(t *testing.T) {
	n := netkit.New(t)
	var st unix.Stat_t
	if err := unix.Stat(n.Pod.Path, &st); err != nil {
		t.Fatal(err)
	}
	err := n.Pod.Do(func() error {
		var self unix.Stat_t
		if err := unix.Stat("/proc/thread-self/ns/net", &self); err != nil {
			return err
		}
		if self.Dev != st.Dev || self.Ino != st.Ino {
			return fmt.Errorf("thread is in namespace %d:%d, want %s's %d:%d", self.Dev, self.Ino, n.Pod.Name, st.Dev, st.Ino)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Pod.Do(func() error { panic("boom") }); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("panic in Do: got %v, want an error that carries it", err)
	}
}

// TestCleanup checks that a Net's namespaces are gone once the test that made it has finished.
func TestCleanup(t *testing.T) {
	prereq.Root(t)
	ip := prereq.Binary(t, "ip")
	var names []string
	t.Run("net", func(t *testing.T) {
		n := netkit.New(t)
		names = []string{n.Pod.Name, n.Remote.Name}
		n.Remote.ListenTCP(t, "open", at(n.Remote.IPv4, 0))
		n.Pod.Run(t, "iptables", "-A", "OUTPUT", "-j", "ACCEPT")
		for _, name := range names {
			if !slices.Contains(netnsList(t, ip), name) {
				t.Fatalf("namespace %s missing while in use", name)
			}
		}
	})
	if len(names) == 0 {
		t.Fatal("the Net was not created")
	}
	for _, name := range names {
		if slices.Contains(netnsList(t, ip), name) {
			t.Errorf("namespace %s left behind", name)
		}
	}
}

func netnsList(t *testing.T, ip string) []string {
	t.Helper()
	out, err := exec.Command(ip, "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		if fields := strings.Fields(line); len(fields) > 0 {
			names = append(names, fields[0])
		}
	}
	return names
}

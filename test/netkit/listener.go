package netkit

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshinit/meshinit/initcontainer/origdst"
)

// connTimeout bounds how long a listener waits for one client's line; cleanup cuts it short.
const connTimeout = 10 * time.Second

// Listener answers every connection or datagram with the Reply line describing what it saw. It
// serves, many clients at once, until the test's cleanup closes it.
type Listener struct {
	Name string         // reported in every Reply, to tell where traffic landed
	Addr netip.AddrPort // the bound address, with the actual port when asked for port 0
}

// ListenOption configures a listener.
type ListenOption func(*dialConfig)

// OwnedBy makes the listener's socket owned by uid, so that what it sends matches iptables'
// `-m owner --uid-owner uid`, as a sidecar's answers do.
func OwnedBy(uid uint32) ListenOption { return func(c *dialConfig) { c.uid = int(uid) } }

// InConntrackZones makes a UDP listener also look for the original destination of what it
// receives in these conntrack zones, where CT rules may have put the flows.
func InConntrackZones(zones ...uint16) ListenOption {
	return func(c *dialConfig) { c.zones = append(c.zones, zones...) }
}

func listenConfig(opts []ListenOption) dialConfig {
	cfg := dialConfig{uid: -1, gid: -1}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// ListenTCP starts a TCP listener named name in the namespace. addr may have an unspecified
// address (0.0.0.0 or ::) and port 0 for an ephemeral port; the socket serves addr's family only.
func (ns *Namespace) ListenTCP(t testing.TB, name string, addr netip.AddrPort, opts ...ListenOption) *Listener {
	t.Helper()
	checkListen(t, name, addr)
	cfg := listenConfig(opts)
	var ln *net.TCPListener
	if err := ns.Do(func() (err error) {
		if err := cfg.becomeOwner(); err != nil {
			return err
		}
		ln, err = net.ListenTCP(network("tcp", addr.Addr()), net.TCPAddrFromAddrPort(addr))
		return err
	}); err != nil {
		t.Fatalf("netkit: listen tcp %s in %s: %v", addr, ns.Name, err)
	}
	l := &Listener{Name: name, Addr: addrPort(ln.Addr())}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("netkit: listener %s: accept: %v", name, err)
				}
				return
			}
			wg.Go(func() { l.answerTCP(ctx, t, c) })
		}
	})
	t.Cleanup(func() {
		cancel()
		closeWhileNoFork(ln)
		wg.Wait()
	})
	return l
}

// closeWhileNoFork closes a listener's socket while no process is being forked. A child forked by
// another goroutine (an `ip` or iptables command of a parallel test) holds every socket of the
// parent until it execs: a socket closed in that moment goes on listening, and a SYN to its port
// is answered, then reset, where a test expects the port refused. syscall's forkExec holds
// ForkLock for writing until its child has exec'ed.
func closeWhileNoFork(c io.Closer) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	c.Close()
}

func (l *Listener) answerTCP(ctx context.Context, t testing.TB, c *net.TCPConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(connTimeout))
	// Cleanup must not wait for clients that never send their line.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := readLine(c); err != nil {
		return // the client went away; there is no one to answer
	}
	local, peer := addrPort(c.LocalAddr()), addrPort(c.RemoteAddr())
	orig, err := origdst.Of(c)
	if err != nil {
		// Closing without an answer makes the client fail too, rather than trust a wrong Reply.
		t.Errorf("netkit: listener %s: original destination of %s -> %s: %v", l.Name, peer, local, err)
		return
	}
	io.WriteString(c, Reply{Listener: l.Name, Local: local, Peer: peer, OriginalDst: orig}.String()+"\n")
}

// readLine reads one newline-terminated line of at most maxLine bytes.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxLine)).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// checkListen rejects names that would break the one-line reply, and addresses without an IP
// (which package net would quietly take for "::").
func checkListen(t testing.TB, name string, addr netip.AddrPort) {
	t.Helper()
	if name == "" || strings.ContainsAny(name, " \t\r\n=") {
		t.Fatalf("netkit: listener name %q must be non-empty, without spaces or '='", name)
	}
	if !addr.Addr().IsValid() {
		t.Fatalf("netkit: listener %s: no address to listen on; use 0.0.0.0 or :: for any", name)
	}
}

package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/meshinit/meshinit/initcontainer/origdst"
	"github.com/meshinit/meshinit/test/images/kumadp/seen"
)

// dialTimeout bounds each upstream connection attempt.
const dialTimeout = 5 * time.Second

// Envoy's inbound passthrough sources: kuma-init's rules return the proxy's traffic from them on
// lo instead of redirecting it back to the inbound port.
var (
	passthroughV4 = netip.MustParseAddr("127.0.0.6")
	passthroughV6 = netip.MustParseAddr("::6")
)

// forwarder takes the connections kuma-init's rules redirect to one port and forwards each to
// where it was headed, as Envoy's passthrough does.
type forwarder struct {
	name string // outbound, inbound, dns
	log  *slog.Logger
	rec  *recorder
	// passthrough dials from Envoy's inbound passthrough source.
	passthrough bool
}

func (f *forwarder) serve(l *net.TCPListener) error {
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go f.handle(c)
	}
}

func (f *forwarder) handle(c *net.TCPConn) {
	defer c.Close()
	orig, err := origdst.Of(c)
	if err != nil {
		f.log.Error("no original destination", "listener", f.name, "from", c.RemoteAddr(), "err", err)
		f.rec.add(seen.Event{Kind: f.name, From: c.RemoteAddr().String(), Err: "no original destination: " + err.Error()})
		return
	}
	if local := addrPort(c.LocalAddr()); orig == local {
		// Forwarding a connection that was not redirected would connect to this listener again.
		f.log.Warn("not redirected: closed", "listener", f.name, "from", c.RemoteAddr(), "to", local)
		f.rec.add(seen.Event{Kind: f.name, From: c.RemoteAddr().String(), To: local.String(), Err: "not redirected: closed"})
		return
	}
	f.forward(c, orig)
}

// forward copies c to and from a new connection to dst until both sides are done.
func (f *forwarder) forward(c *net.TCPConn, dst netip.AddrPort) {
	d := net.Dialer{Timeout: dialTimeout}
	if f.passthrough {
		src := passthroughV4
		if dst.Addr().Is6() {
			src = passthroughV6
		}
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	up, err := d.Dial("tcp", dst.String())
	if err != nil {
		f.log.Warn("forward failed", "listener", f.name, "from", c.RemoteAddr(), "to", dst, "err", err)
		f.rec.add(seen.Event{Kind: f.name, From: c.RemoteAddr().String(), To: dst.String(), Err: err.Error()})
		return
	}
	defer up.Close()
	f.log.Info("forwarding", "listener", f.name, "from", c.RemoteAddr(), "to", dst, "via", up.LocalAddr())
	f.rec.add(seen.Event{Kind: f.name, From: c.RemoteAddr().String(), To: dst.String(), Via: up.LocalAddr().String()})
	var wg sync.WaitGroup
	wg.Go(func() {
		io.Copy(up, c)
		up.(*net.TCPConn).CloseWrite()
	})
	io.Copy(c, up)
	c.CloseWrite()
	wg.Wait()
}

func addrPort(a net.Addr) netip.AddrPort {
	ap := a.(*net.TCPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

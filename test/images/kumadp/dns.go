package main

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/meshinit/meshinit/test/images/kumadp/seen"
)

// dnsForwarder stands in for kuma-dp's DNS proxy: it knows no mesh names and forwards every query
// to the pod's nameservers, as the proxy does with names outside the mesh. Its UID's DNS is not
// redirected, so the queries reach them.
type dnsForwarder struct {
	log       *slog.Logger
	rec       *recorder
	upstreams []netip.AddrPort
}

// readResolvConf takes the nameservers of a resolv.conf as upstreams.
func (d *dnsForwarder) readResolvConf(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(fields[1])
		if err != nil {
			return fmt.Errorf("dns: %s: nameserver %q: %w", path, fields[1], err)
		}
		d.upstreams = append(d.upstreams, netip.AddrPortFrom(ip, 53))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("dns: %s: %w", path, err)
	}
	if len(d.upstreams) == 0 {
		return fmt.Errorf("dns: %s names no nameserver", path)
	}
	return nil
}

// serveUDP answers each query with the first upstream's answer.
func (d *dnsForwarder) serveUDP(pc *net.UDPConn) error {
	buf := make([]byte, 65535)
	for {
		n, client, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		query := append([]byte(nil), buf[:n]...)
		go func() {
			answer, upstream, err := d.exchangeUDP(query)
			if err != nil {
				d.log.Warn("dns query failed", "from", client, "err", err)
				d.rec.add(seen.Event{Kind: "dns", From: client.String(), Detail: "udp", Err: err.Error()})
				return
			}
			d.log.Info("dns", "proto", "udp", "from", client, "upstream", upstream)
			d.rec.add(seen.Event{Kind: "dns", From: client.String(), To: upstream.String(), Detail: "udp"})
			pc.WriteToUDPAddrPort(answer, client)
		}()
	}
}

func (d *dnsForwarder) exchangeUDP(query []byte) ([]byte, netip.AddrPort, error) {
	var errs []error
	for _, up := range d.upstreams {
		answer, err := func() ([]byte, error) {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(up))
			if err != nil {
				return nil, err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := c.Write(query); err != nil {
				return nil, err
			}
			buf := make([]byte, 65535)
			n, err := c.Read(buf)
			return buf[:n], err
		}()
		if err == nil {
			return answer, up, nil
		}
		errs = append(errs, err)
	}
	return nil, netip.AddrPort{}, errors.Join(errs...)
}

// serveTCP forwards each DNS-over-TCP connection, whole, to the first upstream.
func (d *dnsForwarder) serveTCP(l *net.TCPListener) error {
	f := &forwarder{name: "dns", log: d.log, rec: d.rec}
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			defer c.Close()
			f.forward(c, d.upstreams[0])
		}()
	}
}

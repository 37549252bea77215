package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"syscall"
	"time"
)

// serve listens on every port of s and serves until ctx ends, recording what it handles in rec. A
// listener that cannot be opened stops it, except IPv6 ones on a host without IPv6, which are only
// logged.
func serve(ctx context.Context, s *Settings, log *slog.Logger, rec *recorder) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 16)
	var closers []func() error
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	httpServer := func(name string, port uint16, h http.Handler) error {
		l, err := net.Listen("tcp", ":"+strconv.Itoa(int(port)))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		closers = append(closers, srv.Close)
		go func() { errs <- srv.Serve(l) }()
		return nil
	}
	if err := httpServer("readiness", s.ReadinessPort, readiness(rec)); err != nil {
		return err
	}
	if s.ProbeProxyPort != 0 {
		if err := httpServer("probe proxy", s.ProbeProxyPort, &prober{podIP: s.PodIP, log: log, rec: rec}); err != nil {
			return err
		}
	}

	tcp := func(name string, ip netip.Addr, port uint16, serve func(*net.TCPListener) error) error {
		l, err := net.ListenTCP(network("tcp", ip), net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, port)))
		if err != nil {
			return listenError(name, ip, err, log)
		}
		closers = append(closers, l.Close)
		go func() { errs <- serve(l) }()
		return nil
	}
	tp := s.TP
	var families []netip.Addr
	if tp.IPFamilyMode.IPv4() {
		families = append(families, netip.IPv4Unspecified())
	}
	if tp.IPFamilyMode.IPv6() {
		families = append(families, netip.IPv6Unspecified())
	}
	for _, unspecified := range families {
		out := &forwarder{name: "outbound", log: log, rec: rec}
		if err := tcp("outbound", unspecified, tp.Redirect.Outbound.Port, out.serve); err != nil {
			return err
		}
		if tp.Redirect.Inbound.Enabled {
			in := &forwarder{name: "inbound", log: log, rec: rec, passthrough: true}
			if err := tcp("inbound", unspecified, tp.Redirect.Inbound.Port, in.serve); err != nil {
				return err
			}
		}
	}
	if tp.Redirect.DNS.Enabled {
		d := &dnsForwarder{log: log, rec: rec}
		if err := d.readResolvConf(s.ResolvConf); err != nil {
			return err
		}
		// kuma-init redirects DNS to the loopback address of the query's family.
		for _, lo := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()} {
			if lo.Is6() && !tp.IPFamilyMode.IPv6() || lo.Is4() && !tp.IPFamilyMode.IPv4() {
				continue
			}
			pc, err := net.ListenUDP(network("udp", lo), net.UDPAddrFromAddrPort(netip.AddrPortFrom(lo, tp.Redirect.DNS.Port)))
			if err != nil {
				if err := listenError("dns", lo, err, log); err != nil {
					return err
				}
				continue
			}
			closers = append(closers, pc.Close)
			go func() { errs <- d.serveUDP(pc) }()
			if err := tcp("dns", lo, tp.Redirect.DNS.Port, d.serveTCP); err != nil {
				return err
			}
		}
	}
	log.Info("ready")
	select {
	case <-ctx.Done():
		log.Info("stopping")
		return nil
	case err := <-errs:
		return err
	}
}

// listenError forgives IPv6 listeners on hosts without IPv6, as kuma-init skips such hosts.
func listenError(name string, ip netip.Addr, err error, log *slog.Logger) error {
	if ip.Is6() && (errors.Is(err, syscall.EAFNOSUPPORT) || errors.Is(err, syscall.EADDRNOTAVAIL)) {
		log.Warn("no IPv6: not listening", "listener", name, "err", err)
		return nil
	}
	return fmt.Errorf("%s on %s: %w", name, ip, err)
}

// network is "tcp4" or "tcp6" (or udp…): each socket serves one family, as Envoy's do, so that
// SO_ORIGINAL_DST is asked at the level of the connection's own family.
func network(proto string, ip netip.Addr) string {
	if ip.Is4() {
		return proto + "4"
	}
	return proto + "6"
}

// readiness is kuma-dp's /ready, and the stand-in's record at /standin. The stand-in is ready once
// it listens, and exits when stopped rather than draining, so it never answers kuma-dp's
// TERMINATING.
func readiness(rec *recorder) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /standin", rec)
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write([]byte("READY"))
	})
	return mux
}

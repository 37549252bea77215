package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/meshinit/meshinit/test/images/kumadp/seen"
)

// The probe proxy's request headers, set by the injector on rewritten probes.
const (
	headerPrefix      = "X-Kuma-Probes-"
	headerScheme      = headerPrefix + "Scheme"
	headerTimeout     = headerPrefix + "Timeout"
	headerHost        = headerPrefix + "Host"
	headerGRPCService = headerPrefix + "Grpc-Service"
)

// prober is kuma-dp's application probe proxy. Kubelet sends it the app's probes, rewritten by
// the injector into HTTP GETs:
//
//	/<port><path>   an HTTP probe of <port> (x-kuma-probes-scheme: HTTPS for TLS)
//	/tcp/<port>     a TCP probe
//	/grpc/<port>    a gRPC health probe (x-kuma-probes-grpc-service names the service)
//
// with x-kuma-probes-timeout in seconds (default 1). It probes the app at the pod's address from
// Envoy's passthrough source, which kuma-init's rules do not redirect, and answers HEALTHY (200),
// UNHEALTHY (503, or an HTTP probe's own failing status) or UNKNOWN (503, a malformed request).
type prober struct {
	podIP netip.Addr
	log   *slog.Logger
	rec   *recorder
}

func (p *prober) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, rest := "http", r.URL.Path
	for _, k := range []string{"tcp", "grpc"} {
		if after, ok := strings.CutPrefix(rest, "/"+k+"/"); ok {
			kind, rest = k, "/"+after
		}
	}
	portText, path, _ := strings.Cut(strings.TrimPrefix(rest, "/"), "/")
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		p.log.Warn("probe: no port", "path", r.URL.Path)
		p.rec.add(seen.Event{Kind: "probe", From: r.RemoteAddr, Detail: kind + " " + r.URL.Path, Status: http.StatusServiceUnavailable, Err: "no port"})
		result(w, "UNKNOWN", http.StatusServiceUnavailable)
		return
	}
	timeout := time.Second
	if s, err := strconv.Atoi(r.Header.Get(headerTimeout)); err == nil && s > 0 {
		timeout = time.Duration(s) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	target := netip.AddrPortFrom(p.target(), uint16(port))
	var status int
	switch kind {
	case "tcp":
		status = p.probeTCP(ctx, target)
	case "grpc":
		status = p.probeGRPC(ctx, target, r.Header.Get(headerGRPCService))
	default:
		status = p.probeHTTP(ctx, target, "/"+path, r)
	}
	p.log.Info("probe", "kind", kind, "target", target, "path", r.URL.Path, "status", status)
	if kind == "http" && r.Header.Get(headerScheme) != "" {
		kind += " " + r.Header.Get(headerScheme)
	}
	p.rec.add(seen.Event{Kind: "probe", From: r.RemoteAddr, To: target.String(), Detail: kind + " " + r.URL.Path, Status: status})
	if status == http.StatusOK {
		result(w, "HEALTHY", status)
		return
	}
	result(w, "UNHEALTHY", status)
}

// target is the app's address: the pod's, or loopback when INSTANCE_IP is not set.
func (p *prober) target() netip.Addr {
	if p.podIP.IsValid() {
		return p.podIP
	}
	return netip.MustParseAddr("127.0.0.1")
}

func (p *prober) dialer() *net.Dialer {
	d := &net.Dialer{}
	if p.podIP.IsValid() {
		src := passthroughV4
		if p.podIP.Is6() {
			src = passthroughV6
		}
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	return d
}

func (p *prober) probeTCP(ctx context.Context, target netip.AddrPort) int {
	c, err := p.dialer().DialContext(ctx, "tcp", target.String())
	if err != nil {
		return http.StatusServiceUnavailable
	}
	c.Close()
	return http.StatusOK
}

// probeHTTP follows kuma-dp: the scheme header's value, lowercased, is the URL's scheme, and
// only the exact value HTTPS (corev1.URISchemeHTTPS, as Kuma's injector writes it) turns off
// certificate verification; the app's status is passed on when it fails.
func (p *prober) probeHTTP(ctx context.Context, target netip.AddrPort, path string, in *http.Request) int {
	scheme := in.Header.Get(headerScheme)
	if scheme == "" {
		scheme = "HTTP"
	}
	transport := &http.Transport{DialContext: p.dialer().DialContext, DisableKeepAlives: true}
	if scheme == "HTTPS" {
		transport.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	u := fmt.Sprintf("%s://%s%s", strings.ToLower(scheme), target, path)
	if in.URL.RawQuery != "" {
		u += "?" + in.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return http.StatusServiceUnavailable
	}
	for k, v := range in.Header {
		if !strings.HasPrefix(k, headerPrefix) {
			req.Header[k] = v
		}
	}
	if host := in.Header.Get(headerHost); host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		p.log.Debug("probe: http", "url", u, "err", err)
		return http.StatusServiceUnavailable
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return http.StatusOK
	}
	return resp.StatusCode
}

func (p *prober) probeGRPC(ctx context.Context, target netip.AddrPort, service string) int {
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		return p.dialer().DialContext(ctx, "tcp", addr)
	}
	conn, err := grpc.NewClient("passthrough:///"+target.String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithContextDialer(dial))
	if err != nil {
		return http.StatusServiceUnavailable
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		p.log.Debug("probe: grpc", "target", target, "service", service, "status", resp.GetStatus(), "err", err)
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

func result(w http.ResponseWriter, text string, status int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, text)
}

// Command echo is the application of the test images: it shows what reached it, so that tests can
// tell whether traffic and kubelet's probes came straight or through the sidecar. Each server is
// off when its address is empty:
//
//	--http=:8080    HTTP: answers every request with a JSON Report of it; /status/<code> answers <code>
//	--https=:8443   the same over TLS, with a self-signed certificate made at start
//	--tcp=:9000     TCP: echoes every byte back
//	--grpc=:9090    gRPC: grpc.health.v1.Health, SERVING for "" and each of --grpc-services
//
// It exits 0 on SIGTERM or SIGINT.
//
// With --get=URL it is a client instead, for Jobs and init containers: it fetches URL once (HTTP,
// or HTTPS without verifying the certificate), prints the answer, and exits 0 on a 2xx status, 1
// otherwise; no server starts.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Config is where the servers listen; "" turns one off.
type Config struct {
	HTTP, HTTPS, TCP, GRPC string
	GRPCServices           []string
}

// Report is the HTTP answer: the request and the connection it came on.
type Report struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Query   string              `json:"query,omitempty"`
	Host    string              `json:"host"`
	Proto   string              `json:"proto"`
	TLS     bool                `json:"tls"`
	Headers map[string][]string `json:"headers"`
	// Remote is the client's address as this server saw it: 127.0.0.6 or ::6 when the sidecar
	// passed the connection through.
	Remote string `json:"remote"`
	Local  string `json:"local"`
}

func main() {
	var cfg Config
	var services string
	flag.StringVar(&cfg.HTTP, "http", ":8080", "HTTP address; empty for none")
	flag.StringVar(&cfg.HTTPS, "https", ":8443", "HTTPS address; empty for none")
	flag.StringVar(&cfg.TCP, "tcp", ":9000", "TCP echo address; empty for none")
	flag.StringVar(&cfg.GRPC, "grpc", ":9090", "gRPC health address; empty for none")
	flag.StringVar(&services, "grpc-services", "", "comma-separated gRPC service names reported SERVING, besides \"\"")
	get := flag.String("get", "", "fetch this URL once, print the answer and exit: 0 on a 2xx status")
	flag.Parse()
	if *get != "" {
		ctx, cancel := context.WithTimeout(context.Background(), getTimeout)
		defer cancel()
		if err := Get(ctx, *get, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	if services != "" {
		cfg.GRPCServices = strings.Split(services, ",")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := Run(ctx, cfg, nil); err != nil {
		log.Fatal(err)
	}
}

// Run serves until ctx ends. ready, when not nil, receives the bound address of each server by
// name (http, https, tcp, grpc) once all listen.
func Run(ctx context.Context, cfg Config, ready func(map[string]net.Addr)) error {
	listeners := map[string]net.Listener{}
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	for name, addr := range map[string]string{"http": cfg.HTTP, "https": cfg.HTTPS, "tcp": cfg.TCP, "grpc": cfg.GRPC} {
		if addr == "" {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		listeners[name] = l
		log.Printf("echo: %s on %s", name, l.Addr())
	}
	errs := make(chan error, len(listeners))
	web := &http.Server{Handler: http.HandlerFunc(echoHTTP), ReadHeaderTimeout: 10 * time.Second}
	defer web.Close()
	if l, ok := listeners["http"]; ok {
		go func() { errs <- web.Serve(l) }()
	}
	if l, ok := listeners["https"]; ok {
		cert, err := selfSigned()
		if err != nil {
			return err
		}
		go func() { errs <- web.Serve(tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}})) }()
	}
	if l, ok := listeners["tcp"]; ok {
		go func() { errs <- echoTCP(l) }()
	}
	if l, ok := listeners["grpc"]; ok {
		srv := grpc.NewServer()
		hs := health.NewServer()
		for _, s := range cfg.GRPCServices {
			hs.SetServingStatus(s, healthpb.HealthCheckResponse_SERVING)
		}
		healthpb.RegisterHealthServer(srv, hs)
		defer srv.Stop()
		go func() { errs <- srv.Serve(l) }()
	}
	if ready != nil {
		addrs := map[string]net.Addr{}
		for name, l := range listeners {
			addrs[name] = l.Addr()
		}
		ready(addrs)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errs:
		return err
	}
}

func echoHTTP(w http.ResponseWriter, r *http.Request) {
	if code, ok := strings.CutPrefix(r.URL.Path, "/status/"); ok {
		if n, err := strconv.Atoi(code); err == nil && n >= 200 && n <= 599 {
			w.WriteHeader(n)
		}
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	rep := Report{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Host: r.Host, Proto: r.Proto,
		TLS: r.TLS != nil, Headers: r.Header, Remote: r.RemoteAddr}
	if local != nil {
		rep.Local = local.String()
	}
	log.Printf("echo: %s %s from %s to %s", r.Method, r.URL, rep.Remote, rep.Local)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rep)
}

func echoTCP(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		log.Printf("echo: tcp from %s to %s", c.RemoteAddr(), c.LocalAddr())
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

// getTimeout bounds --get: a connection that hangs fails the container rather than holding it.
const getTimeout = 10 * time.Second

// Get fetches url and copies the answer to out; a status other than 2xx is an error.
func Get(ctx context.Context, url string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(out, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// selfSigned makes the HTTPS server's certificate: kubelet and kuma-dp do not verify probes'
// certificates, and tests that do can skip verification too.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "echo"},
		DNSNames:     []string{"localhost", host},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

package webhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/meshinit/meshinit/internal/readfile"
)

// Timeouts of the webhook server that no option changes: the API server completes a handshake
// and sends a request's headers at once, and keeps connections open while it uses them.
// Variables, so that tests need not wait that long.
var (
	// handshakeTimeout bounds a connection's TLS handshake, and an HTTP/1.1 request's headers.
	handshakeTimeout = 10 * time.Second
	// idleTimeout closes a connection with no request in flight for that long, which gives its
	// place among its client's connections back.
	idleTimeout = 30 * time.Second
)

const (
	// shutdownTimeout bounds the wait for the requests in flight when the injector stops.
	shutdownTimeout = time.Minute
	// maxClientCABytes bounds the client CA file.
	maxClientCABytes = 1 << 20
)

// http2Config bounds what a client may hold over HTTP/2: streams at once on one connection (the
// API server opens another connection when it needs more), and bytes the server buffers for it
// before the handlers read them.
var http2Config = &http.HTTP2Config{
	MaxConcurrentStreams:          100,
	MaxReceiveBufferPerConnection: 64 << 10,
	MaxReceiveBufferPerStream:     64 << 10,
}

// aeadSuites are the TLS 1.2 cipher suites the webhook offers: ECDHE with an AEAD cipher, for ECDSA
// (the chart's certificates) and RSA keys. TLS 1.3's suites are all AEAD.
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// admissionServer serves the webhook. controller-runtime's server registers the handlers, and
// instruments them with its latency histogram, but is never started: this one serves its mux,
// with the limits controller-runtime's lacks. Clients are told apart by their address, which is
// a pod's own on the cluster network, and the API server's.
type admissionServer struct {
	crwebhook.Server

	addr, certDir string
	// clientCAs, when not nil, are the CAs a client's certificate must be signed by.
	clientCAs *x509.CertPool
	limits    Limits
	log       logr.Logger

	conns  *connTable
	ledger *ledger
	// guards are the guards of the handlers registered with Guarded, which the server reports on
	// when it stops.
	guards []*guard

	mu      sync.Mutex
	watcher *certwatcher.CertWatcher
	started bool
}

// newAdmissionServer makes the server; it reads the client CA file, if one is named.
func newAdmissionServer(host string, port int, certDir, clientCAFile string, limits Limits, log logr.Logger) (*admissionServer, error) {
	s := &admissionServer{
		Server:  crwebhook.NewServer(crwebhook.Options{Host: host, Port: port, CertDir: certDir}),
		addr:    net.JoinHostPort(host, strconv.Itoa(port)),
		certDir: certDir,
		limits:  limits,
		log:     log,
		conns:   &connTable{perClient: limits.MaxConnsPerClient, total: limits.MaxConns, byClient: map[netip.Addr]int{}},
		ledger:  newLedger(bodyBudget, clientShare),
	}
	if clientCAFile != "" {
		var err error
		if s.clientCAs, err = readClientCA(clientCAFile); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Guarded wraps an admission handler in a guard of this server's ledger.
func (s *admissionServer) Guarded(next http.Handler) http.Handler {
	g := &guard{next: next, ledger: s.ledger, bodyTimeout: s.limits.BodyTimeout, stale: s.stale}
	s.guards = append(s.guards, g)
	return g
}

// stale says whether conn was opened on a certificate other than the one served now.
func (s *admissionServer) stale(conn *clientConn) bool {
	s.mu.Lock()
	w := s.watcher
	s.mu.Unlock()
	if w == nil {
		return false
	}
	current, _ := w.GetCertificate(nil)
	served := conn.cert.Load()
	return served != nil && served != current
}

// Start serves until ctx is done, then waits for the requests in flight.
func (s *admissionServer) Start(ctx context.Context) error {
	watcher, err := certwatcher.New(filepath.Join(s.certDir, "tls.crt"), filepath.Join(s.certDir, "tls.key"))
	if err != nil {
		return err
	}
	go func() {
		if err := watcher.Start(ctx); err != nil {
			s.log.Error(err, "watching the serving certificate")
		}
	}()
	tlsConfig := s.tlsConfig(watcher)
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: s.WebhookMux(),
		// Requests outlive ctx: the server stops taking new ones when it is done, and lets those in
		// flight finish.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext: withConn,
		TLSConfig:   tlsConfig,
		HTTP2:       http2Config,
		// The handshake too, which takes the least of these.
		ReadHeaderTimeout: handshakeTimeout,
		ReadTimeout:       handshakeTimeout + s.limits.BodyTimeout,
		WriteTimeout:      handshakeTimeout + s.limits.BodyTimeout + answerTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		// Handshakes that fail or time out are the clients' business; the server's log would carry
		// every port scan.
		ErrorLog: log.New(handshakeFilter{s.log}, "", 0),
	}
	stopped := make(chan error, 1)
	go func() {
		<-ctx.Done()
		inFlight := s.inFlight()
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		if err != nil {
			err = fmt.Errorf("stopping the webhook server, %d of %d requests in flight were still unanswered after %s: %w", s.inFlight(), inFlight, shutdownTimeout, err)
		} else {
			s.log.Info("webhook server stopped; every request in flight was answered", "inFlightAtStop", inFlight, "answered", s.answered())
		}
		stopped <- err
	}()
	s.mu.Lock()
	s.watcher, s.started = watcher, true
	s.mu.Unlock()
	s.log.Info("serving the webhook", "addr", s.addr, "clientCertificates", s.clientCAs != nil, "limits", s.limits)
	if err := srv.ServeTLS(s.conns.listener(ln), "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return <-stopped
}

func (s *admissionServer) inFlight() (n int64) {
	for _, g := range s.guards {
		n += g.inFlight.Load()
	}
	return n
}

func (s *admissionServer) answered() (n int64) {
	for _, g := range s.guards {
		n += g.answered.Load()
	}
	return n
}

// tlsConfig is the webhook's TLS: TLS 1.2 with AEAD suites or TLS 1.3, the certificate the watcher
// holds, recorded for each connection, and client certificates required when a client CA is given.
func (s *admissionServer) tlsConfig(watcher *certwatcher.CertWatcher) *tls.Config {
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: aeadSuites,
		// Every connection gets the certificate served at its start, which stale compares.
		SessionTicketsDisabled: true,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := watcher.GetCertificate(hello)
			if conn, ok := hello.Conn.(*clientConn); ok {
				conn.cert.Store(cert)
			}
			return cert, err
		},
	}
	if s.clientCAs != nil {
		cfg.ClientCAs, cfg.ClientAuth = s.clientCAs, tls.RequireAndVerifyClientCert
	}
	return cfg
}

// readClientCA reads the PEM certificates of the CA that signs the API server's client
// certificate.
func readClientCA(path string) (*x509.CertPool, error) {
	const accepted = "accepted: a file holding the PEM certificate of the CA that signed the API server's client certificate for webhooks"
	data, err := readfile.Regular(path, maxClientCABytes)
	if err != nil {
		return nil, fmt.Errorf("--client-ca-file: %w; %s", err, accepted)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--client-ca-file: %s holds no PEM certificate; %s", path, accepted)
	}
	return pool, nil
}

// StartedChecker is healthy once the server serves. It does not connect: with client
// certificates required, its own handshake would fail.
func (s *admissionServer) StartedChecker() healthz.Checker {
	return func(*http.Request) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !s.started {
			return errors.New("the webhook server has not started yet")
		}
		return nil
	}
}

// connTable counts the open connections, by client address.
type connTable struct {
	perClient, total int

	mu       sync.Mutex
	byClient map[netip.Addr]int
	open     int
	// refused counts the connections closed at once, for tests.
	refused atomic.Int64
}

// listener accepts from ln the connections within the table's limits, and closes the others.
func (t *connTable) listener(ln net.Listener) net.Listener { return &limitedListener{ln, t} }

type limitedListener struct {
	net.Listener
	table *connTable
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientOf(c.RemoteAddr().String())
		if reason := l.table.admit(client); reason != "" {
			connectionsRefused.WithLabelValues(reason).Inc()
			l.table.refused.Add(1)
			c.Close()
			continue
		}
		return &clientConn{Conn: c, client: client, table: l.table}, nil
	}
}

// Why a connection is refused: the reason label of sidecar_injector_connections_refused_total.
const (
	connRefusedClient = "client-limit"
	connRefusedTotal  = "limit"
)

// admit counts a new connection of client, or says why it is refused.
func (t *connTable) admit(client netip.Addr) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.byClient[client] >= t.perClient:
		return connRefusedClient
	case t.open >= t.total:
		return connRefusedTotal
	}
	t.byClient[client]++
	t.open++
	return ""
}

func (t *connTable) release(client netip.Addr) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.open--
	if t.byClient[client]--; t.byClient[client] == 0 {
		delete(t.byClient, client)
	}
}

// clientConn is an accepted connection: its client, the certificate it was served, and the
// bytes its requests hold of the ledger (under the ledger's lock).
type clientConn struct {
	net.Conn
	client netip.Addr
	table  *connTable
	cert   atomic.Pointer[tls.Certificate]
	held   int64
	closed sync.Once
}

func (c *clientConn) Close() error {
	c.closed.Do(func() { c.table.release(c.client) })
	return c.Conn.Close()
}

type connKey struct{}

// withConn is the server's ConnContext: it gives requests their connection.
func withConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*clientConn); ok {
		return context.WithValue(ctx, connKey{}, cc)
	}
	return ctx
}

// connOf is the connection a request came on, nil when it did not come through the server.
func connOf(ctx context.Context) *clientConn {
	c, _ := ctx.Value(connKey{}).(*clientConn)
	return c
}

// handshakeFilter logs the HTTP server's errors, but for failed handshakes, at V(1).
type handshakeFilter struct{ log logr.Logger }

func (f handshakeFilter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	if strings.Contains(msg, "TLS handshake error") {
		f.log.V(1).Info(msg)
	} else {
		f.log.Info(msg)
	}
	return len(p), nil
}

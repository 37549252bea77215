package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/testconfig"
)

// The guard's refusals, word for word, as TestBodyLimits and TestBodyBudget send them.
const (
	refusalDeclared   = "the admission request is 52428800 bytes, more than the 7340032 (7 MiB) the injector reads; the API server sends no pod over 3 MiB"
	refusalTooLarge   = "the admission request is over the 7340032 (7 MiB) bytes the injector reads; the API server sends no pod over 3 MiB"
	refusalBusy       = "the injector is already reading 16 MiB of admission requests, as much as it holds at once; try again"
	refusalClientBusy = "the injector is already reading 8 MiB of admission requests from this client, as much as it reads from one client at once; try again"
	refusalSlow       = "the admission request's body did not arrive within 1s"
)

// TestBodyLimits sends the injector's webhook server bodies no API server sends, over HTTP/2 as
// the API server does and over HTTP/1.1: each is refused with an AdmissionReview that says why and
// carries the request's UID, which the body's first bytes give, so that the API server would show
// the reason. Over HTTP/1.1 the server closes the connection on an endless upload, which the
// client may see before the answer, so only bodies with an end or trickling ones are sent that
// way. Afterwards every byte taken is given back and the webhook answers as before.
func TestBodyLimits(t *testing.T) {
	env := kubeenv.Start(t)
	inj := startInjector(t, env, *testconfig.Default(), func(o *ServerOptions) { o.Limits.BodyTimeout = time.Second })
	for i, tc := range []struct {
		name   string
		proto  string
		body   func(start []byte) io.Reader
		length int64 // -1: unknown, sent chunked
		want   string
	}{
		{"50 MiB, length given", "HTTP/2.0", func(start []byte) io.Reader { return io.LimitReader(&spaces{start: start}, 50<<20) }, 50 << 20, refusalDeclared},
		{"endless", "HTTP/2.0", func(start []byte) io.Reader { return &spaces{start: start} }, -1, refusalTooLarge},
		{"trickling", "HTTP/2.0", func(start []byte) io.Reader { return &trickle{start: start} }, -1, refusalSlow},
		{"silent after its beginning, length given", "HTTP/2.0", func(start []byte) io.Reader { return &silent{start: start, hold: t.Context().Done()} }, 1 << 20, refusalSlow},
		{"50 MiB, length given", "HTTP/1.1", func(start []byte) io.Reader { return io.LimitReader(&spaces{start: start}, 50<<20) }, 50 << 20, refusalDeclared},
		{"trickling", "HTTP/1.1", func(start []byte) io.Reader { return &trickle{start: start} }, -1, refusalSlow},
		{"silent after its beginning, length given", "HTTP/1.1", func(start []byte) io.Reader { return &silent{start: start, hold: t.Context().Done()} }, 1 << 20, refusalSlow},
	} {
		t.Run(tc.proto+" "+tc.name, func(t *testing.T) {
			uid := fmt.Sprintf("hostile-%d", i)
			resp := post(t, inj.clientFor(tc.proto, "127.0.0.1"), inj.url, tc.body(reviewStart(uid)), tc.length)
			if resp == nil || resp.Allowed || resp.Result == nil || resp.Result.Message != tc.want || string(resp.UID) != uid {
				t.Errorf("answer %+v, want a refusal of %s saying %q", resp, uid, tc.want)
			}
		})
	}
	ordinaryReview(t, inj.clientFor("HTTP/2.0", "127.0.0.1"), inj.url)
}

// TestBodyBudget: what one request holds is its whole declared length, taken when its headers
// arrive, and held until it is answered. A client's requests hold at most 8 MiB together, whatever
// their connections, and all clients' at most 16 MiB: a request over either is refused at once
// with "try again", and once the requests holding them end, everything is given back.
func TestBodyBudget(t *testing.T) {
	env := kubeenv.Start(t)
	inj := startInjector(t, env, *testconfig.Default(), func(o *ServerOptions) { o.Limits.BodyTimeout = time.Minute })
	l := inj.server.ledger
	held := func(client string) int64 {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.byClient[netip.MustParseAddr(client)]
	}
	release := make(chan struct{})
	var holders sync.WaitGroup
	// One client for each address: its requests share one HTTP/2 connection, as the API server's.
	clients := map[string]*http.Client{}
	clientFrom := func(from string) *http.Client {
		if clients[from] == nil {
			clients[from] = inj.clientFor("HTTP/2.0", from)
		}
		return clients[from]
	}
	// hold sends a request of n bytes that stops after its beginning, until release, and waits
	// until it holds them.
	hold := func(from, uid string, n int64) {
		t.Helper()
		was := held(from)
		client := clientFrom(from)
		holders.Go(func() { _, _ = postRaw(client, inj.url, &silent{start: reviewStart(uid), hold: release}, n) })
		poll.Until(t, uid+" holds its bytes", func() (bool, error) { return held(from) == was+n, nil })
	}
	refused := func(from, uid string, n int64, want string) {
		t.Helper()
		resp := post(t, clientFrom(from), inj.url, &silent{start: reviewStart(uid), hold: release}, n)
		if resp == nil || resp.Allowed || resp.Result == nil || resp.Result.Message != want || string(resp.UID) != uid {
			t.Errorf("answer to %s %+v, want a refusal saying %q", uid, resp, want)
		}
	}

	hold("127.0.0.2", "a", 5<<20)
	// Another 5 MiB of the same client is over its share.
	refused("127.0.0.2", "a-again", 5<<20, refusalClientBusy)
	hold("127.0.0.2", "a-small", 3<<20)
	hold("127.0.0.3", "b", 7<<20)
	// 15 MiB are held: another client's 2 MiB are over the whole budget.
	refused("127.0.0.4", "c", 2<<20, refusalBusy)
	hold("127.0.0.4", "c-small", 1<<20)
	l.mu.Lock()
	peak, peakClient, peakConn := l.peak, l.peakClient, l.peakConn
	l.mu.Unlock()
	if peak != 16<<20 || peakClient != 8<<20 || peakConn != 8<<20 {
		t.Errorf("held at most %d bytes in all, %d by a client, %d on a connection; want 16, 8 and 8 MiB", peak, peakClient, peakConn)
	}

	close(release)
	holders.Wait()
	poll.Until(t, "every byte is given back", func() (bool, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.held == 0 && len(l.byClient) == 0, nil
	})
	ordinaryReview(t, inj.clientFor("HTTP/2.0", "127.0.0.1"), inj.url)
}

// TestConnectionLimits: connections over a client's limit, or over the limit of all, are closed
// as soon as they are accepted, and other clients' are not; a connection closed, idle for too
// long, or too slow to complete its handshake or to send a request gives its place back.
func TestConnectionLimits(t *testing.T) {
	defer func(h, i time.Duration) { handshakeTimeout, idleTimeout = h, i }(handshakeTimeout, idleTimeout)
	env := kubeenv.Start(t)
	dial := func(inj *testInjector, from string) (*tls.Conn, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		return tls.DialWithDialer(d, "tcp", inj.addr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // the limits, not the certificate, are tested
	}

	t.Run("limits", func(t *testing.T) {
		// Nothing is closed for its silence while the limits are tested.
		handshakeTimeout, idleTimeout = time.Hour, time.Hour
		inj := startInjector(t, env, *testconfig.Default(), func(o *ServerOptions) { o.Limits.MaxConnsPerClient, o.Limits.MaxConns = 3, 5 })
		table := inj.server.conns
		var conns []*tls.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		accept := func(from string) {
			t.Helper()
			c, err := dial(inj, from)
			if err != nil {
				t.Fatalf("a connection from %s within the limits: %v", from, err)
			}
			conns = append(conns, c)
		}
		refuse := func(from string) {
			t.Helper()
			refused := table.refused.Load()
			if c, err := dial(inj, from); err == nil {
				c.Close()
				t.Fatalf("a connection from %s over the limits completed its handshake", from)
			}
			if table.refused.Load() != refused+1 {
				t.Errorf("the refusal of a connection from %s was not counted", from)
			}
		}
		for range 3 {
			accept("127.0.0.2")
		}
		refuse("127.0.0.2")
		accept("127.0.0.3")
		accept("127.0.0.3")
		refuse("127.0.0.4")
		// A closed connection gives its place back.
		conns[0].Close()
		poll.Until(t, "the closed connection's place is back", func() (bool, error) { return inj.openConns() == 4, nil })
		accept("127.0.0.2")
	})

	t.Run("silent connections", func(t *testing.T) {
		handshakeTimeout, idleTimeout = 500*time.Millisecond, 500*time.Millisecond
		inj := startInjector(t, env, *testconfig.Default())
		// One that never completes its handshake, one that sends no request after it, and, once
		// it has asked something, one that asks nothing more: each is closed.
		raw, err := net.Dial("tcp", inj.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		quiet, err := dial(inj, "127.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		defer quiet.Close()
		for _, c := range []net.Conn{raw, quiet} {
			if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
				t.Errorf("a connection that sends nothing: read %v, want the server's close", err)
			}
		}
		ordinaryReview(t, inj.clientFor("HTTP/1.1", "127.0.0.3"), inj.url)
		poll.Until(t, "every place is back", func() (bool, error) { return inj.openConns() == 0, nil })
	})
}

// addr is the webhook's host:port.
func (inj *testInjector) addr() string {
	return strings.TrimSuffix(strings.TrimPrefix(inj.url, "https://"), Path)
}

// openConns is the number of connections the server counts open.
func (inj *testInjector) openConns() int {
	table := inj.server.conns
	table.mu.Lock()
	defer table.mu.Unlock()
	return table.open
}

// TestStaleConnectionsEnd: once the certificate files change, a connection opened on the old
// certificate answers its next request and ends, over HTTP/1.1 and HTTP/2, so that the client's
// next request is served the new certificate: the API server keeps its connections open for as
// long as it uses them, and would otherwise never check the new one.
func TestStaleConnectionsEnd(t *testing.T) {
	env := kubeenv.Start(t)
	inj := startInjector(t, env, *testconfig.Default())
	certDir := inj.server.certDir
	next := envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}
	if err := next.PrepWithoutInstalling(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = next.Cleanup() }()
	newCert, err := os.ReadFile(filepath.Join(next.LocalServingCertDir, "tls.crt"))
	if err != nil {
		t.Fatal(err)
	}

	clients := map[string]*http.Client{}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		c := inj.clientFor(proto, "127.0.0.1")
		c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // which certificate is served is what is tested
		if proto == "HTTP/1.1" {
			c.Transport.(*http.Transport).TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		if resp := ordinaryReview(t, c, inj.url); resp.ProtoMajor != map[string]int{"HTTP/1.1": 1, "HTTP/2.0": 2}[proto] {
			t.Fatalf("%s: answered over %s", proto, resp.Proto)
		}
		clients[proto] = c
	}
	for _, name := range []string{"tls.key", "tls.crt"} {
		data, err := os.ReadFile(filepath.Join(next.LocalServingCertDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	served := func(resp *http.Response) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: resp.TLS.PeerCertificates[0].Raw})
	}
	poll.Until(t, "the new certificate is served", func() (bool, error) {
		c := inj.clientFor("HTTP/2.0", "127.0.0.1")
		c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // as above
		defer c.CloseIdleConnections()
		return bytes.Equal(served(ordinaryReview(t, c, inj.url)), newCert), nil
	})
	for proto, c := range clients {
		// On the old connection, answered, and told that the connection ends.
		resp := ordinaryReview(t, c, inj.url)
		if bytes.Equal(served(resp), newCert) {
			t.Errorf("%s: the connection opened before the change was not reused", proto)
		}
		if proto == "HTTP/1.1" && !resp.Close {
			t.Errorf("%s: the answer on the old connection does not close it", proto)
		}
		if resp := ordinaryReview(t, c, inj.url); !bytes.Equal(served(resp), newCert) {
			t.Errorf("%s: the request after that was still served the old certificate", proto)
		}
	}
}

// ordinaryReview posts a well-formed review to url with c, checks that it is answered with its
// UID, and returns the HTTP response.
func ordinaryReview(t *testing.T, c *http.Client, url string) *http.Response {
	t.Helper()
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"ordinary","kind":{"version":"v1","kind":"Service"},"operation":"CREATE"}}`
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(review))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("an ordinary review: %v", err)
	}
	defer resp.Body.Close()
	var answer admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.Response == nil || !answer.Response.Allowed || answer.Response.UID != "ordinary" {
		t.Fatalf("an ordinary review: HTTP %d, %+v, %v", resp.StatusCode, answer.Response, err)
	}
	return resp
}

// post sends body as an admission request and returns the AdmissionReview's response, nil after
// reporting an answer that is not one.
func post(t *testing.T, client *http.Client, url string, body io.Reader, length int64) *admissionv1.AdmissionResponse {
	t.Helper()
	resp, err := postRaw(client, url, body, length)
	if err != nil {
		t.Errorf("no answer: %v", err)
		return nil
	}
	return resp
}

// postRaw is post, with its failure returned. An answer ends the request, as the API server
// would end it, even if the body was not all sent.
func postRaw(client *http.Client, url string, body io.Reader, length int64) (*admissionv1.AdmissionResponse, error) {
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = length
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	defer resp.Body.Close()
	// First: over HTTP/2, closing the answer's body waits for the request's to be sent.
	defer cancel()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || review.Response == nil {
		return nil, fmt.Errorf("HTTP %d, not an AdmissionReview with a response: %v", resp.StatusCode, err)
	}
	return review.Response, nil
}

// reviewStart is the beginning of an AdmissionReview of request uid, as the API server writes
// it, padded with spaces to the bytes a refusal reads to find the UID.
func reviewStart(uid string) []byte {
	start := []byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"` + uid + `",`)
	return append(start, bytes.Repeat([]byte(" "), uidPrefix-len(start))...)
}

// spaces is an endless body: its start, then whitespace.
type spaces struct {
	start []byte
	off   int
}

func (s *spaces) Read(p []byte) (int, error) {
	if s.off < len(s.start) {
		n := copy(p, s.start[s.off:])
		s.off += n
		return n, nil
	}
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// trickle is a body that sends its start, then a byte every 100ms, for ever. The pause is the
// attack's shape, not a wait for an outcome: bytes keep arriving, well within any idle timeout, so
// only the deadline on the whole body (1 s in TestBodyLimits) can end the request, and the test
// waits for the server's answer.
type trickle struct {
	start []byte
	sent  bool
}

func (tr *trickle) Read(p []byte) (int, error) {
	if !tr.sent {
		tr.sent = true
		return copy(p, tr.start), nil
	}
	time.Sleep(100 * time.Millisecond)
	p[0] = ' '
	return 1, nil
}

// silent is a body that sends its start, then nothing until hold is closed, and then fails.
type silent struct {
	start []byte
	sent  bool
	hold  <-chan struct{}
}

func (s *silent) Read(p []byte) (int, error) {
	if !s.sent {
		s.sent = true
		return copy(p, s.start), nil
	}
	<-s.hold
	return 0, errors.New("the client gave up")
}

// clientFor is a client of the injector that speaks proto from the address from.
func (inj *testInjector) clientFor(proto, from string) *http.Client {
	tr := inj.client.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext
	if proto == "HTTP/2.0" {
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr}
}

package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// What one admission request may cost the injector. controller-runtime would read a body into
// memory, up to 7 MiB, for as long as its client takes: a few clients sending large or endless
// bodies, or sending a little and going silent, would take the injector past its memory limit or
// hold everything it reads with for as long as they like. So the guard reads each body itself,
// within a short deadline, from a budget of bytes that one client address cannot take alone.
const (
	// maxReviewBytes is controller-runtime's limit: room for a pod of the 3 MiB the API server
	// accepts, encoded as JSON.
	maxReviewBytes = 7 << 20
	// bodyBudget is how many bytes of request bodies the injector reads at once: two reviews of the
	// largest pods, or thousands of ordinary ones. Reading a body costs controller-runtime about
	// twice its size again in heap, and the chart gives the injector 256 MiB.
	bodyBudget = 16 << 20
	// clientShare is how much of it the requests from one address may hold: one review of the
	// largest pod fits, and a client that holds it leaves the other half to the others.
	clientShare = 8 << 20
	// readChunk is what a body of unknown length takes from the budget before each read.
	readChunk = 64 << 10
	// uidPrefix is how much of a body a refusal reads, outside the budget, to find the request's
	// UID: the API server writes it within the first hundred bytes.
	uidPrefix = 512
	// answerTimeout bounds the handler's answer: the API server waits at most 30 seconds
	// (timeoutSeconds' maximum) for it.
	answerTimeout = 30 * time.Second
)

// Limits bound what the webhook's clients may hold of the injector. The API server sends a
// request's headers and body at once, multiplexes its requests over one or a few HTTP/2
// connections, and opens new ones when the injector closes them: none of these limits is near
// what it needs.
type Limits struct {
	// BodyTimeout is how long a request's body may take to arrive after its headers.
	BodyTimeout time.Duration
	// MaxConnsPerClient and MaxConns bound the connections open at once from one address, and from
	// all of them; a connection over either is closed as soon as it is accepted.
	MaxConnsPerClient, MaxConns int
}

// DefaultLimits are the injector's flags' defaults.
func DefaultLimits() Limits {
	return Limits{BodyTimeout: 5 * time.Second, MaxConnsPerClient: 32, MaxConns: 512}
}

// Why a request is refused: the reason label of sidecar_injector_requests_refused_total.
const (
	refusedBusy       = "busy"
	refusedClientBusy = "client-busy"
	refusedTooLarge   = "too-large"
	refusedSlow       = "slow-body"
	refusedUnreadable = "unreadable"
)

// refusal is a request the guard answers itself.
type refusal struct {
	code    int32
	reason  string
	message string
}

func busy() *refusal {
	return &refusal{http.StatusTooManyRequests, refusedBusy, fmt.Sprintf(
		"the injector is already reading %d MiB of admission requests, as much as it holds at once; try again", bodyBudget>>20)}
}

func clientBusy() *refusal {
	return &refusal{http.StatusTooManyRequests, refusedClientBusy, fmt.Sprintf(
		"the injector is already reading %d MiB of admission requests from this client, as much as it reads from one client at once; try again", clientShare>>20)}
}

// ledger counts the bytes of bodies being read, by client address and by connection.
type ledger struct {
	total, perClient int64

	mu       sync.Mutex
	held     int64
	byClient map[netip.Addr]int64
	// peak, peakClient and peakConn are the most held at once, in all, by one client and by one
	// connection, for tests.
	peak, peakClient, peakConn int64
}

func newLedger(total, perClient int64) *ledger {
	return &ledger{total: total, perClient: perClient, byClient: map[netip.Addr]int64{}}
}

// take reserves n bytes for a request of client on conn (nil when it is not known), or says why
// it cannot. It never waits: requests that each hold a part would wait for one another.
func (l *ledger) take(client netip.Addr, conn *clientConn, n int64) *refusal {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byClient[client]+n > l.perClient {
		return clientBusy()
	}
	if l.held+n > l.total {
		return busy()
	}
	l.held += n
	l.byClient[client] += n
	l.peak = max(l.peak, l.held)
	l.peakClient = max(l.peakClient, l.byClient[client])
	if conn != nil {
		conn.held += n
		l.peakConn = max(l.peakConn, conn.held)
	}
	bodyBytes.Set(float64(l.held))
	return nil
}

// give returns n bytes taken for client on conn.
func (l *ledger) give(client netip.Addr, conn *clientConn, n int64) {
	if n == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held -= n
	if l.byClient[client] -= n; l.byClient[client] == 0 {
		delete(l.byClient, client)
	}
	if conn != nil {
		conn.held -= n
	}
	bodyBytes.Set(float64(l.held))
}

// guard bounds each admission request: it reads the body whole before the handler sees it,
// within the body timeout, from the ledger; it refuses what it cannot read with an
// AdmissionReview carrying the request's UID, when the body's first bytes give it, so that the
// API server shows the reason ("try again") to whoever created the pod rather than "received
// invalid webhook response". A connection opened on a certificate since replaced ends after its
// answer, so that the API server's next request verifies the new one.
type guard struct {
	next        http.Handler
	ledger      *ledger
	bodyTimeout time.Duration
	// stale says whether a connection was opened on a certificate no longer served; nil for none.
	stale func(*clientConn) bool
	// inFlight counts the requests being answered, answered those answered.
	inFlight, answered atomic.Int64
}

func (g *guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.inFlight.Add(1)
	defer func() { g.inFlight.Add(-1); g.answered.Add(1) }()
	// A ResponseWriter that cannot take a deadline (a test's recorder) reads no network.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(g.bodyTimeout))
	conn := connOf(r.Context())
	if conn != nil && g.stale != nil && g.stale(conn) {
		w.Header().Set("Connection", "close")
	}
	client := clientOf(r.RemoteAddr)
	body, taken, refused := g.read(r, client, conn)
	defer g.ledger.give(client, conn, taken)
	if refused != nil {
		requestsRefused.WithLabelValues(refused.reason).Inc()
		// Over HTTP/1.1 the server would read on through what is left of the body to reuse the
		// connection; a client that sent it is not worth that.
		if r.ProtoMajor == 1 {
			w.Header().Set("Connection", "close")
		}
		refuse(w, types.UID(requestUID(body)), refused)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	g.next.ServeHTTP(w, r)
}

// read reads r's body from the ledger, and returns it and the bytes taken, or why it is refused
// and what it read of it, which begins with the UID if anything does.
func (g *guard) read(r *http.Request, client netip.Addr, conn *clientConn) (body []byte, taken int64, refused *refusal) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, 0, nil
	}
	if n := r.ContentLength; n > maxReviewBytes {
		return prefix(r.Body), 0, &refusal{http.StatusRequestEntityTooLarge, refusedTooLarge, fmt.Sprintf(
			"the admission request is %d bytes, more than the %d (%d MiB) the injector reads; the API server sends no pod over 3 MiB",
			n, maxReviewBytes, maxReviewBytes>>20)}
	} else if n >= 0 {
		// Its length is known: all of it is taken at once, and read into a buffer of that size.
		if refused := g.ledger.take(client, conn, n); refused != nil {
			return prefix(r.Body), 0, refused
		}
		body = make([]byte, n)
		read, err := io.ReadFull(r.Body, body)
		if err != nil {
			return body[:read], n, g.unreadable(err)
		}
		return body, n, nil
	}
	// Its length is not known: each read takes a chunk, and gives back what it did not fill.
	var buf bytes.Buffer
	for {
		if buf.Len() > maxReviewBytes {
			return buf.Bytes(), taken, &refusal{http.StatusRequestEntityTooLarge, refusedTooLarge, fmt.Sprintf(
				"the admission request is over the %d (%d MiB) bytes the injector reads; the API server sends no pod over 3 MiB",
				maxReviewBytes, maxReviewBytes>>20)}
		}
		want := int64(min(readChunk, maxReviewBytes+1-buf.Len()))
		if refused := g.ledger.take(client, conn, want); refused != nil {
			if buf.Len() == 0 {
				return prefix(r.Body), taken, refused
			}
			return buf.Bytes(), taken, refused
		}
		taken += want
		buf.Grow(int(want))
		chunk := buf.AvailableBuffer()[:want]
		n, err := r.Body.Read(chunk)
		buf.Write(chunk[:n])
		g.ledger.give(client, conn, want-int64(n))
		taken -= want - int64(n)
		switch {
		case errors.Is(err, io.EOF):
			return buf.Bytes(), taken, nil
		case err != nil:
			return buf.Bytes(), taken, g.unreadable(err)
		}
	}
}

// unreadable is the refusal of a body that could not be read whole.
func (g *guard) unreadable(err error) *refusal {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return &refusal{http.StatusRequestTimeout, refusedSlow, fmt.Sprintf(
			"the admission request's body did not arrive within %s", g.bodyTimeout)}
	}
	return &refusal{http.StatusBadRequest, refusedUnreadable, "the admission request's body could not be read: " + err.Error()}
}

// prefix reads what a refusal needs of a body to find its UID, within the body's deadline.
func prefix(body io.Reader) []byte {
	data, _ := io.ReadAll(io.LimitReader(body, uidPrefix))
	return data
}

// refuse answers with an AdmissionReview that refuses request uid, with the UID, without which
// the API server discards the answer. The HTTP status is 200 whatever the refusal's code: the API
// server's client takes any other for a failed call, which the failure policy then decides, and
// would not show the reason.
func refuse(w http.ResponseWriter, uid types.UID, r *refusal) {
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{UID: uid, Result: &metav1.Status{Code: r.code, Message: r.message}},
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(review) // the client may be gone; there is no one else to tell
}

// clientOf is the address of a request's client, from its RemoteAddr; IPv4 addresses as IPv4
// whichever socket family took them.
func clientOf(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// withDefaults fills l's zero fields with DefaultLimits'.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.BodyTimeout <= 0 {
		l.BodyTimeout = d.BodyTimeout
	}
	if l.MaxConnsPerClient <= 0 {
		l.MaxConnsPerClient = d.MaxConnsPerClient
	}
	if l.MaxConns <= 0 {
		l.MaxConns = d.MaxConns
	}
	return l
}

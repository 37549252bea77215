// Package hostile is clients of the injector's webhook that no API server is: connections from an
// address of their choosing (all of 127.0.0.0/8 is this machine, so each stands for a pod of its
// own), sending an admission request's beginning and then nothing, and opening a new connection
// each time the injector closes one. Tests see what they cost the injector and its real callers.
package hostile

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/meshinit/meshinit/test/poll"
)

// Flood is connections that each send the beginning of an admission request and go silent.
type Flood struct {
	// Addr is the webhook's host:port; From the address the connections come from.
	Addr, From string
	// Dial, when set, opens the connections instead of a dialer bound to From: from a pod's
	// network namespace, say, with the pod's address.
	Dial func(network, addr string) (net.Conn, error)
	// Conns is how many connections it keeps open.
	Conns int
	// Send is how many bytes of each body it sends before going silent; Declared the length its
	// headers declare, or 0 for none (the body is chunked).
	Send, Declared int
}

// Running is a flood under way.
type Running struct {
	flood Flood
	stop  chan struct{}
	wg    sync.WaitGroup

	mu sync.Mutex
	// started counts the connections that have sent their bytes or been refused at least once.
	started int
	// answers counts the injector's answers by what they said; refused the connections it
	// closed before or during their handshake.
	answers map[string]int
	refused int
	open    map[net.Conn]struct{}
}

// Start opens the flood's connections, which keep going until the test ends or Stop, and waits
// until each has sent its bytes once or been refused.
func (f Flood) Start(t testing.TB) *Running {
	t.Helper()
	r := &Running{flood: f, stop: make(chan struct{}), answers: map[string]int{}, open: map[net.Conn]struct{}{}}
	for i := range f.Conns {
		r.wg.Go(func() { r.keep(i) })
	}
	t.Cleanup(r.Stop)
	poll.Until(t, fmt.Sprintf("the %d connections from %s have started", f.Conns, f.From), func() (bool, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.started == f.Conns, nil
	})
	return r
}

// Stop closes the flood's connections, and returns once it has stopped.
func (r *Running) Stop() {
	r.mu.Lock()
	select {
	case <-r.stop:
	default:
		close(r.stop)
		for c := range r.open {
			c.Close()
		}
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Outcome says how the injector treated the flood: its answers by message, and the connections
// it closed at once.
func (r *Running) Outcome() (answers map[string]int, refused int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	answers = map[string]int{}
	for msg, n := range r.answers {
		answers[msg] = n
	}
	return answers, r.refused
}

// keep keeps connection i of the flood open: when the injector ends its request for being slow,
// or closes it, it opens another; once refused, at its handshake or with "try again", it gives
// up, as its place is taken.
func (r *Running) keep(i int) {
	first := true
	for {
		refused, answer := r.once(i, func() {
			if first {
				first = false
				r.mu.Lock()
				r.started++
				r.mu.Unlock()
			}
		})
		r.mu.Lock()
		switch {
		case refused:
			r.refused++
		case answer != "":
			r.answers[answer]++
		}
		r.mu.Unlock()
		select {
		case <-r.stop:
			return
		default:
		}
		if refused || strings.HasSuffix(answer, "try again") {
			return
		}
	}
}

// once sends one request on a new connection, calls sent once its bytes are out (or the
// connection was refused), and returns when the injector answers or closes the connection.
func (r *Running) once(i int, sent func()) (refused bool, answer string) {
	f := r.flood
	dial := f.Dial
	if dial == nil {
		dial = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(f.From)}}).Dial
	}
	raw, err := dial("tcp", f.Addr)
	if err != nil {
		sent()
		return true, ""
	}
	conn := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}) //nolint:gosec // an attacker checks nothing
	if !r.track(conn) {
		return false, ""
	}
	defer r.untrack(conn)
	if err := conn.Handshake(); err != nil {
		sent()
		return true, ""
	}
	head := fmt.Sprintf("POST /inject-sidecar HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n", f.Addr)
	if f.Declared > 0 {
		head += fmt.Sprintf("Content-Length: %d\r\n\r\n", f.Declared)
	} else {
		head += "Transfer-Encoding: chunked\r\n\r\n" + fmt.Sprintf("%x\r\n", f.Send)
	}
	start := fmt.Sprintf(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"flood-%s-%d",`, f.From, i)
	body := start + strings.Repeat(" ", max(0, f.Send-len(start)))
	_, err = io.WriteString(conn, head+body)
	sent()
	if err != nil {
		return false, ""
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return false, ""
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || review.Response == nil || review.Response.Result == nil {
		return false, fmt.Sprintf("HTTP %d, not a refusal", resp.StatusCode)
	}
	return false, review.Response.Result.Message
}

// track adds conn to the open ones; false, closing it, once the flood is stopped.
func (r *Running) track(conn net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.stop:
		conn.Close()
		return false
	default:
	}
	r.open[conn] = struct{}{}
	return true
}

func (r *Running) untrack(conn net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	conn.Close()
	delete(r.open, conn)
}

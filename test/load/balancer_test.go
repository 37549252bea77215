package load

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	testcluster "github.com/meshinit/meshinit/test/cluster"
)

// readinessPeriod is how often the balancer asks each endpoint's /readyz.
const readinessPeriod = 100 * time.Millisecond

// balancer stands in for the injectors' Service, there being no kube-proxy here. As kube-proxy's
// rules do, it sends each new connection to the next ready endpoint, round robin, and leaves
// established connections with their endpoint until either side closes them. An endpoint leaves
// the rotation when its /readyz fails, or when its pod is marked terminating, which kube-proxy
// learns from the EndpointSlice as soon as the pod's deletion starts. With no endpoint left, or
// none answering, a connection is reset, as kube-proxy's REJECT and a closed port would.
type balancer struct {
	listener  net.Listener
	endpoints []*endpoint
	// accepted counts connections: the API server opens new ones when its webhook client changes.
	accepted atomic.Int64
	// reset counts connections that found no endpoint.
	reset atomic.Int64

	mu   sync.Mutex
	next int
	// open are the connections being relayed, both sides, closed when the test ends.
	open map[net.Conn]struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// endpoint is one injector behind the balancer.
type endpoint struct {
	injector           *testcluster.Injector
	ready, terminating atomic.Bool
	// conns counts the connections sent to it.
	conns atomic.Int64
}

// newBalancer listens on a free port of 127.0.0.1 in front of the injectors, until the test ends.
func newBalancer(t testing.TB, injectors ...*testcluster.Injector) *balancer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{listener: l, open: map[net.Conn]struct{}{}, stop: make(chan struct{})}
	for _, inj := range injectors {
		ep := &endpoint{injector: inj}
		ep.ready.Store(inj.Ready())
		b.endpoints = append(b.endpoints, ep)
		b.wg.Go(func() { b.probe(ep) })
	}
	b.wg.Go(b.serve)
	t.Cleanup(func() {
		close(b.stop)
		l.Close()
		b.mu.Lock()
		for conn := range b.open {
			conn.Close()
		}
		b.mu.Unlock()
		b.wg.Wait()
	})
	return b
}

// URL is the balancer's https URL, without a path.
func (b *balancer) URL() string { return "https://" + b.listener.Addr().String() }

// endpoint is the balancer's endpoint for inj.
func (b *balancer) endpoint(inj *testcluster.Injector) *endpoint {
	for _, ep := range b.endpoints {
		if ep.injector == inj {
			return ep
		}
	}
	panic("not an endpoint of the balancer: " + inj.Addr)
}

// probe follows the endpoint's readiness, as kubelet's readiness probe does.
func (b *balancer) probe(ep *endpoint) {
	tick := time.NewTicker(readinessPeriod)
	defer tick.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-tick.C:
			ep.ready.Store(ep.injector.Ready())
		}
	}
}

// pick is the next endpoint in the rotation, nil if none is in it.
func (b *balancer) pick() *endpoint {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range b.endpoints {
		ep := b.endpoints[b.next%len(b.endpoints)]
		b.next++
		if ep.ready.Load() && !ep.terminating.Load() {
			return ep
		}
	}
	return nil
}

func (b *balancer) serve() {
	for {
		conn, err := b.listener.Accept()
		if err != nil {
			return
		}
		b.accepted.Add(1)
		b.wg.Go(func() { b.forward(conn.(*net.TCPConn)) })
	}
}

// forward relays one connection to an endpoint, each direction closed when its sender closes it;
// a connection reset on one side resets the other.
func (b *balancer) forward(client *net.TCPConn) {
	ep := b.pick()
	if ep == nil {
		b.reset.Add(1)
		resetConn(client)
		return
	}
	conn, err := net.Dial("tcp", ep.injector.Addr)
	if err != nil {
		b.reset.Add(1)
		resetConn(client)
		return
	}
	ep.conns.Add(1)
	backend := conn.(*net.TCPConn)
	if !b.track(client, backend) {
		return
	}
	defer b.untrack(client, backend)
	done := make(chan struct{})
	go func() {
		pipe(backend, client)
		close(done)
	}()
	pipe(client, backend)
	<-done
	client.Close()
	backend.Close()
}

// track adds the connections to the open ones; false, closing them, once the balancer is stopped.
func (b *balancer) track(conns ...net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-b.stop:
		for _, conn := range conns {
			conn.Close()
		}
		return false
	default:
	}
	for _, conn := range conns {
		b.open[conn] = struct{}{}
	}
	return true
}

func (b *balancer) untrack(conns ...net.Conn) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, conn := range conns {
		delete(b.open, conn)
	}
}

// pipe copies from src to dst until src closes, then closes dst for writing, or resets dst if src
// was reset.
func pipe(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil && !errors.Is(err, net.ErrClosed) {
		resetConn(dst)
		return
	}
	_ = dst.CloseWrite()
}

// resetConn closes conn with a TCP reset rather than an orderly close.
func resetConn(conn *net.TCPConn) {
	_ = conn.SetLinger(0)
	conn.Close()
}

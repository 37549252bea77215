package webhook

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// drainingManager stops the injector the way a replica behind a Service must stop for no pod to be
// refused: kubelet sends SIGTERM while kube-proxy is still sending it new connections, and the
// API server still holds keep-alive connections to it. So when asked to stop, it first fails
// /readyz and keeps serving the webhook for the drain period, ending each connection after its
// response so that the API server's next request goes through the Service to a replica that
// stays; only then does the manager stop, and the webhook server waits for the requests in
// flight.
type drainingManager struct {
	manager.Manager
	drain    time.Duration
	draining atomic.Bool
	log      logr.Logger
	// after is time.After; tests end the drain themselves.
	after func(time.Duration) <-chan time.Time
}

func newDrainingManager(mgr manager.Manager, drain time.Duration, log logr.Logger) *drainingManager {
	return &drainingManager{Manager: mgr, drain: drain, log: log, after: time.After}
}

// Start runs the manager until the drain period has passed since ctx was done.
func (m *drainingManager) Start(ctx context.Context) error {
	run, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-run.Done():
			return
		case <-ctx.Done():
		}
		m.draining.Store(true)
		m.log.Info("stopping: /readyz fails and the webhook serves on until the drain period ends", "drain", m.drain)
		select {
		case <-run.Done():
			return
		case <-m.after(m.drain):
		}
		m.log.Info("the drain period ended; the webhook server stops taking requests and answers those in flight")
		stop()
	}()
	return m.Manager.Start(run)
}

// ready is the readiness check that fails once the injector is stopping.
func (m *drainingManager) ready(*http.Request) error {
	if m.draining.Load() {
		return errors.New("the injector is stopping")
	}
	return nil
}

// closingWhenDraining ends each connection after its response once the injector is stopping.
func (m *drainingManager) closingWhenDraining(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

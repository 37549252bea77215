package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// runningManager is a manager that runs until its context is done.
type runningManager struct {
	manager.Manager
	started chan context.Context
}

func (m *runningManager) Start(ctx context.Context) error {
	m.started <- ctx
	<-ctx.Done()
	return nil
}

// TestDrainServesOnThenStops: asked to stop, the injector fails /readyz at once, and serves on,
// closing each connection after its response, until the drain period ends; then the manager
// stops.
func TestDrainServesOnThenStops(t *testing.T) {
	inner := &runningManager{started: make(chan context.Context, 1)}
	m := newDrainingManager(inner, time.Hour, logr.Discard())
	asked, drained := make(chan time.Duration, 1), make(chan time.Time)
	m.after = func(d time.Duration) <-chan time.Time { asked <- d; return drained }
	served := func() http.Header {
		rec := httptest.NewRecorder()
		m.closingWhenDraining(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})).
			ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, nil))
		return rec.Result().Header
	}

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	run := <-inner.started
	if err := m.ready(nil); err != nil {
		t.Fatalf("not ready while serving: %v", err)
	}
	if c := served().Get("Connection"); c != "" {
		t.Errorf("while serving, a response says Connection: %s", c)
	}

	stop()
	// The drain period starts once the injector says it is stopping.
	if d := <-asked; d != time.Hour {
		t.Errorf("drains for %s, want the hour it was given", d)
	}
	if m.ready(nil) == nil {
		t.Error("still ready after being asked to stop")
	}
	if run.Err() != nil {
		t.Fatal("the manager stopped before the drain period ended")
	}
	if c := served().Get("Connection"); c != "close" {
		t.Errorf("while draining, a response says Connection: %q, want close", c)
	}

	close(drained)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if run.Err() == nil {
		t.Error("Start returned with the manager still running")
	}
}

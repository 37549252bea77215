package relay

import (
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestRelay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", SocketName)
	r, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs []map[string]any
	var outcomes []Outcome
	got := make(chan struct{}, 10)
	served := make(chan error, 1)
	go func() {
		served <- r.Serve(Handler{
			Log:     func(f map[string]any) { mu.Lock(); logs = append(logs, f); mu.Unlock(); got <- struct{}{} },
			Outcome: func(o Outcome) { mu.Lock(); outcomes = append(outcomes, o); mu.Unlock(); got <- struct{}{} },
		})
	}()

	s, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	slog.New(slog.NewJSONHandler(s, nil)).Info("rules installed", "pod", "demo/app")
	s.Send(Outcome{Command: "ADD", Result: ResultInstalled, Seconds: 0.01, Namespace: "demo", Pod: "app"})
	_ = s.Close()
	for range 2 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("the records did not arrive")
		}
	}
	mu.Lock()
	if len(logs) != 1 || logs[0]["msg"] != "rules installed" || logs[0]["pod"] != "demo/app" {
		t.Errorf("log records %v", logs)
	}
	if len(outcomes) != 1 || outcomes[0] != (Outcome{Command: "ADD", Result: ResultInstalled, Seconds: 0.01, Namespace: "demo", Pod: "app"}) {
		t.Errorf("outcomes %+v", outcomes)
	}
	mu.Unlock()
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := Dial(path); err == nil {
		t.Error("the socket is still there after Close")
	}
}

// TestSenderNeverWaits: with nobody reading, the socket's queue fills and the sender drops records
// at once instead of waiting, and says how many in its outcome.
func TestSenderNeverWaits(t *testing.T) {
	path := filepath.Join(t.TempDir(), SocketName)
	r, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	const n = 1000
	for range n {
		_, _ = s.Write([]byte(`{"msg":"x"}`))
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("%d writes to a socket nobody reads took %v", n, took)
	}
	if d := s.dropped.Load(); d == 0 || d == n {
		t.Errorf("%d of %d records dropped; want the queue's worth kept and the rest dropped", d, n)
	}
}

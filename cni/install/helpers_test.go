package install

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshinit/meshinit/cni/install/testnode"
	"github.com/meshinit/meshinit/test/logbuf"
	"github.com/meshinit/meshinit/test/poll"
)

// running is an installer running in the background.
type running struct {
	*Installer
	logs   *logbuf.Buffer
	cancel context.CancelFunc
	done   chan error
}

// start runs an installer for node n with the extra environment entries.
func start(t testing.TB, n *testnode.Node, env ...string) *running {
	t.Helper()
	cfg, err := LoadConfig(n.Env(env...))
	if err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	in, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Installer: in, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- in.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
		if t.Failed() {
			t.Logf("install-cni's log:\n%s", logs)
		}
	})
	return r
}

// stop ends Run the way SIGTERM does, and returns what it returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// ready asks GET /ready.
func (r *running) ready() (int, string) {
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	return rec.Code, rec.Body.String()
}

// waitReady waits for /ready to say 200.
func (r *running) waitReady(t testing.TB) {
	t.Helper()
	poll.Until(t, "/ready says 200", func() (bool, error) { code, _ := r.ready(); return code == http.StatusOK, nil })
}

// settle waits until the installer has finished a whole pass begun after the call: whatever it
// would change on the node as it is now, it has changed. A test checks that nothing changed only
// after it. Passes follow file events, so it provokes them by touching the net dir, which changes
// nothing the installer reads; twice, since the first pass to finish may have been under way
// already at the call.
func (r *running) settle(t testing.TB) {
	t.Helper()
	for range 2 {
		before := r.Passes()
		now := time.Now()
		if err := os.Chtimes(r.cfg.MountedNetDir, now, now); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, "the installer finishes a pass", func() (bool, error) { return r.Passes() > before, nil })
	}
}

func gone(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("%s is still there (%v)", path, err)
	}
}

// token is the bearer token in the kubeconfig at path; "" when there is none.
func token(path string) string {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil || cfg.AuthInfos["kuma-cni"] == nil {
		return ""
	}
	return cfg.AuthInfos["kuma-cni"].Token
}

// logged is how many of the installer's log lines carry msg.
func (r *running) logged(msg string) int {
	return strings.Count(r.logs.String(), `msg="`+msg)
}

func httpRecorder(r *running, method, path string) int {
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code
}

package install

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/cni/install/testnode"
	"github.com/meshinit/meshinit/cni/relay"
	"github.com/meshinit/meshinit/test/poll"
)

// TestKumaCNIRecords: what kuma-cni sends to the socket its entry names reaches install-cni's log,
// with its level and attributes, and its results install-cni's metrics.
func TestKumaCNIRecords(t *testing.T) {
	n := testnode.New(t, "token-1")
	n.Provide(t, "10-calico.conflist")
	r := start(t, n)
	r.waitReady(t)
	if !strings.Contains(string(testnode.ReadFile(t, n.Net("10-calico.conflist"))), `"log_socket": "/var/run/kuma-cni/kuma-cni.sock"`) {
		t.Errorf("kuma-cni's entry does not name the socket:\n%s", testnode.ReadFile(t, n.Net("10-calico.conflist")))
	}
	// kuma-cni, on the host, reaches the socket at its host path; here, at the mounted one.
	s, err := relay.Dial(filepath.Join(n.RunDir, relay.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	slog.New(slog.NewJSONHandler(s, nil)).Warn("ADD failed", "pod", "demo/app", "error", "no such pod")
	for _, o := range []relay.Outcome{
		{Command: "ADD", Result: relay.ResultInstalled, Seconds: 0.02},
		{Command: "ADD", Result: relay.ResultInstalled, Seconds: 0.03},
		{Command: "ADD", Result: relay.ResultSkipped, Seconds: 0.001},
		{Command: "ADD", Result: relay.ResultFailed, Seconds: 8},
		{Command: "DEL", Result: relay.ResultOK},
	} {
		s.Send(o)
	}
	m := r.metrics
	poll.Until(t, "install-cni counts kuma-cni's results", func() (bool, error) {
		return testutil.ToFloat64(m.commands.WithLabelValues("DEL", relay.ResultOK)) == 1, nil
	})
	for _, c := range []struct {
		command, result string
		n               float64
	}{{"ADD", relay.ResultInstalled, 2}, {"ADD", relay.ResultSkipped, 1}, {"ADD", relay.ResultFailed, 1}} {
		if got := testutil.ToFloat64(m.commands.WithLabelValues(c.command, c.result)); got != c.n {
			t.Errorf("kuma_cni_commands_total{command=%q,result=%q} = %v, want %v", c.command, c.result, got, c.n)
		}
	}
	if got := testutil.CollectAndCount(m.add); got != 3 {
		t.Errorf("kuma_cni_add_duration_seconds has %d series, want one per ADD result", got)
	}
	want := `level=WARN msg="ADD failed" from=kuma-cni error="no such pod" pod=demo/app`
	if !strings.Contains(r.logs.String(), want) {
		t.Errorf("install-cni's log does not hold kuma-cni's line %s", want)
	}
}

// TestReadinessAndHealsMetrics: kuma_cni_ready follows /ready, and each thing put back after the
// install counts as a heal, by what it was.
func TestReadinessAndHealsMetrics(t *testing.T) {
	n := testnode.New(t, "token-1")
	r := start(t, n)
	poll.Until(t, "/ready says 503", func() (bool, error) { code, _ := r.ready(); return code == http.StatusServiceUnavailable, nil })
	if got := testutil.ToFloat64(r.metrics.ready); got != 0 {
		t.Errorf("kuma_cni_ready %v before the conflist, want 0", got)
	}
	orig := n.Provide(t, "10-calico.conflist")
	r.waitReady(t)
	if got := testutil.ToFloat64(r.metrics.ready); got != 1 {
		t.Errorf("kuma_cni_ready %v once installed, want 1", got)
	}
	if got := testutil.ToFloat64(r.metrics.heals.WithLabelValues(healConflist)); got != 0 {
		t.Errorf("the first install counted as %v heals", got)
	}
	n.Provide(t, "10-calico.conflist", orig...)
	poll.Until(t, "a conflist heal is counted", func() (bool, error) {
		return testutil.ToFloat64(r.metrics.heals.WithLabelValues(healConflist)) == 1, nil
	})
	if err := os.Remove(filepath.Join(n.BinDir, "kuma-cni")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "a binary heal is counted", func() (bool, error) {
		return testutil.ToFloat64(r.metrics.heals.WithLabelValues(healBinary)) == 1, nil
	})
}

// TestUnservableConflist: a conflist of a CNI version kuma-cni does not speak is left alone, and
// install-cni is not ready, saying why.
func TestUnservableConflist(t *testing.T) {
	n := testnode.New(t, "token-1")
	future := []byte(`{"cniVersion": "2.0.0", "name": "k8s-pod-network", "plugins": [{"type": "calico"}]}`)
	n.Provide(t, "10-calico.conflist", future...)
	r := start(t, n)
	want := n.Net("10-calico.conflist") + `: declares cniVersion "2.0.0", which kuma-cni does not speak; accepted: a cniVersion kuma-cni speaks: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0; retrying`
	poll.Until(t, "/ready says why", func() (bool, error) {
		code, body := r.ready()
		return code == http.StatusServiceUnavailable && strings.TrimSpace(body) == want, nil
	})
	if got := testnode.ReadFile(t, n.Net("10-calico.conflist")); string(got) != string(future) {
		t.Errorf("the conflist changed:\n%s", got)
	}
}

// TestConfVersionFromPlugin: a .conf without cniVersion becomes a list of the highest version its
// plugin (asked with VERSION) and kuma-cni speak, up to 1.0.0; a plugin that cannot be asked
// leaves the .conf alone and install-cni not ready, saying why.
func TestConfVersionFromPlugin(t *testing.T) {
	for _, tc := range []struct{ name, speaks, want string }{
		{"up to 0.4.0", `["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0"]`, "0.4.0"},
		{"1.1.0 too", `["0.3.1","0.4.0","1.0.0","1.1.0"]`, "1.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := testnode.New(t, "token-1")
			plugin := "#!/bin/sh\necho '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":" + tc.speaks + "}'\n"
			if err := os.WriteFile(filepath.Join(n.BinDir, "flannel"), []byte(plugin), 0o755); err != nil {
				t.Fatal(err)
			}
			n.Provide(t, "10-flannel.conf", []byte(`{"name": "cbr0", "type": "flannel", "delegate": {"isDefaultGateway": true}}`)...)
			r := start(t, n)
			r.waitReady(t)
			data := testnode.ReadFile(t, n.Net("10-flannel.conflist"))
			if !strings.HasPrefix(string(data), `{"cniVersion":"`+tc.want+`"`) || !conflist.HasEntry(data) {
				t.Errorf("the converted list is\n%s\nwant version %s", data, tc.want)
			}
		})
	}
	n := testnode.New(t, "token-1")
	n.Provide(t, "10-flannel.conf", []byte(`{"name": "cbr0", "type": "flannel"}`)...)
	r := start(t, n)
	want := n.Net("10-flannel.conf") + ": declares no cniVersion, and flannel could not be asked which CNI versions it speaks (" +
		filepath.Join(n.BinDir, "flannel") + ": "
	poll.Until(t, "/ready says why", func() (bool, error) {
		code, body := r.ready()
		return code == http.StatusServiceUnavailable && strings.HasPrefix(body, want), nil
	})
}

// TestSleepFalse: with Kuma's SLEEP=false install-cni installs, returns, and leaves kuma-cni
// installed.
func TestSleepFalse(t *testing.T) {
	n := testnode.New(t, "token-1")
	n.Provide(t, "10-calico.conflist")
	r := start(t, n, "SLEEP=false")
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Fatal(err)
		}
	case <-t.Context().Done():
		t.Fatal("Run did not return")
	}
	if !hasEntry(t, n.Net("10-calico.conflist")) {
		t.Error("kuma-cni is not in the conflist after install-cni returned")
	}
}

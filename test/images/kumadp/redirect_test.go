package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/images/kumadp/seen"
	"github.com/meshinit/meshinit/test/logbuf"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
)

// TestRedirected runs the stand-in as the sidecar of a pod namespace whose rules kuma-init
// installed: the app's outbound connections reach the remote host from the pod's address, the
// remote's inbound ones reach the app from the passthrough source, and the readiness endpoint and
// the probe proxy answer from outside, through the inbound redirection, as kubelet's probes do.
func TestRedirected(t *testing.T) {
	n := netkit.New(t)
	n.Pod.Run(t, binaries.Build(t, "kuma-init"))
	dir := t.TempDir()
	bin := filepath.Join(dir, "kuma-dp")
	// The proxy's UID must reach the binary through the test's private directories.
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "run", "--log-level=debug")
	cmd.Env = append(os.Environ(), "INSTANCE_IP="+n.Pod.IPv4.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: api.DefaultSidecarUID, Gid: api.DefaultSidecarGID}}
	var log logbuf.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	// Started from a thread in the pod's namespace, the process lives in it.
	if err := n.Pod.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("kuma-dp: %v", err)
		}
		if t.Failed() {
			t.Logf("kuma-dp's log:\n%s", log.String())
		}
	})
	for _, ip := range []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
		n.Pod.ListenTCP(t, "app", netip.AddrPortFrom(ip, 8080))
	}
	n.Remote.ListenTCP(t, "remote-web", netip.AddrPortFrom(n.Remote.IPv4, 80))
	n.Remote.ListenTCP(t, "remote-web", netip.AddrPortFrom(n.Remote.IPv6, 80))

	if status := get(t, n.Remote, netip.AddrPortFrom(n.Pod.IPv4, api.SidecarReadinessPort), "/ready"); status != "200 READY" {
		t.Errorf("/ready: %s", status)
	}
	for _, f := range []struct{ pod, remote, passthrough netip.Addr }{
		{n.Pod.IPv4, n.Remote.IPv4, passthroughV4},
		{n.Pod.IPv6, n.Remote.IPv6, passthroughV6},
	} {
		remote := netip.AddrPortFrom(f.remote, 80)
		out, err := n.Pod.DialTCP(t, remote, netkit.AsUID(1000))
		if err != nil || out.Listener != "remote-web" || out.Peer.Addr() != f.pod {
			t.Errorf("app to %s: %+v, %v; want remote-web seeing %s", f.remote, out, err, f.pod)
		}
		// Direct or through the proxy, the remote sees the pod's address: kuma-dp's log tells which.
		if !waitLogged(&log, "listener=outbound", "to="+remote.String()) {
			t.Errorf("kuma-dp logged no outbound connection to %s", remote)
		}
		in, err := n.Remote.DialTCP(t, netip.AddrPortFrom(f.pod, 8080))
		if err != nil || in.Listener != "app" || in.Peer.Addr() != f.passthrough {
			t.Errorf("remote to %s: %+v, %v; want app seeing %s", f.pod, in, err, f.passthrough)
		}
	}
	if status := get(t, n.Remote, netip.AddrPortFrom(n.Pod.IPv4, api.DefaultApplicationProbeProxyPort), "/tcp/8080"); status != "200 HEALTHY" {
		t.Errorf("probe /tcp/8080: %s", status)
	}
	if status := get(t, n.Remote, netip.AddrPortFrom(n.Pod.IPv4, api.DefaultApplicationProbeProxyPort), "/tcp/8081"); status != "503 UNHEALTHY" {
		t.Errorf("probe /tcp/8081, where nothing listens: %s", status)
	}

	// kuma-dp's drain signal is recorded, and the stand-in goes on serving.
	if err := cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if !waitLogged(&log, "SIGUSR2") {
		t.Errorf("kuma-dp logged no SIGUSR2")
	}
	var rec seen.Record
	_, body := fetch(t, n.Remote, netip.AddrPortFrom(n.Pod.IPv4, api.SidecarReadinessPort), "/standin")
	if err := json.Unmarshal(body, &rec); err != nil {
		t.Fatalf("/standin: %v\n%s", err, body)
	}
	if rec.UID != api.DefaultSidecarUID || rec.GID != api.DefaultSidecarGID || !slices.Equal(rec.Args, cmd.Args) {
		t.Errorf("/standin: uid %d, gid %d, args %q; want %d, %d, %q", rec.UID, rec.GID, rec.Args, api.DefaultSidecarUID, api.DefaultSidecarGID, cmd.Args)
	}
	kinds := map[string]int{}
	for _, e := range rec.Events {
		kinds[e.Kind]++
	}
	// Two outbound connections, two inbound ones and the GETs above (to the app's port, through
	// the inbound redirection), two probes, the signal.
	if kinds["outbound"] != 2 || kinds["inbound"] < 2 || kinds["probe"] != 2 || kinds["signal"] != 1 {
		t.Errorf("/standin recorded %v; want 2 outbound, 2 or more inbound, 2 probes, 1 signal:\n%+v", kinds, rec.Events)
	}
}

// waitLogged waits for a line of the log with all the words, and reports whether one came.
func waitLogged(log *logbuf.Buffer, words ...string) bool {
	return poll.Wait(context.Background(), func() (bool, error) {
		for line := range strings.Lines(log.String()) {
			if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(line, w) }) {
				return true, nil
			}
		}
		return false, nil
	}) == nil
}

// get sends GET path to addr from the namespace, as kubelet probes, retrying while the stand-in
// starts, and returns the status code and the body's first line.
func get(t *testing.T, ns *netkit.Namespace, addr netip.AddrPort, path string) string {
	t.Helper()
	status, body := fetch(t, ns, addr, path)
	return fmt.Sprintf("%d %s", status, strings.TrimSpace(string(body)))
}

// fetch sends GET path to addr from the namespace, retrying while the stand-in starts, and returns
// the status code and the body.
func fetch(t *testing.T, ns *netkit.Namespace, addr netip.AddrPort, path string) (int, []byte) {
	t.Helper()
	var status int
	var body []byte
	poll.Until(t, fmt.Sprintf("GET %s%s answers", addr, path), func() (bool, error) {
		var c net.Conn
		// The dial happens on the namespace's thread, so the socket belongs to the namespace.
		if ns.Do(func() (err error) { c, err = net.DialTimeout("tcp", addr.String(), time.Second); return }) != nil {
			return false, nil
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false, nil
		}
		body, _ = io.ReadAll(resp.Body)
		status = resp.StatusCode
		return true, nil
	})
	return status, body
}

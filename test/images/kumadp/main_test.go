package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/images/kumadp/seen"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
)

var quiet = slog.New(slog.DiscardHandler)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// TestParse: kuma-dp's flags as the injector writes them, unknown ones tolerated, the document
// read from --transparent-proxy-config, and the environment.
func TestParse(t *testing.T) {
	cfg := api.DefaultTransparentProxyConfig()
	cfg.Redirect.Outbound.Port, cfg.Redirect.DNS.Enabled, cfg.Redirect.DNS.Port = 16001, true, 16053
	doc, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	s, level, err := parse([]string{"--log-level=debug", "--concurrency=2", "--transparent-proxy-config=" + file,
		"--cp-address=https://kuma-control-plane:5678", "--admin-port=9901", "--proxy-type", "dataplane"},
		env(map[string]string{"KUMA_READINESS_PORT": "19902", "KUMA_APPLICATION_PROBE_PROXY_PORT": "0",
			"INSTANCE_IP": "10.0.0.7", "KUMA_DNS_PROXY_PORT": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	if level != slog.LevelDebug || s.TP.Redirect.Outbound.Port != 16001 || s.TP.Redirect.DNS.Port != 16053 ||
		s.ReadinessPort != 19902 || s.ProbeProxyPort != 0 || s.PodIP != netip.MustParseAddr("10.0.0.7") {
		t.Errorf("got %+v, level %v", s, level)
	}

	s, _, err = parse(nil, env(map[string]string{"KUMA_DNS_ENABLED": "true", "KUMA_DNS_PROXY_PORT": "15054"}))
	if err != nil {
		t.Fatal(err)
	}
	if !s.TP.Redirect.DNS.Enabled || s.TP.Redirect.DNS.Port != 15054 || s.TP.Redirect.Inbound.Port != api.DefaultRedirectPortInbound ||
		s.ReadinessPort != api.SidecarReadinessPort || s.ProbeProxyPort != api.DefaultApplicationProbeProxyPort || s.PodIP.IsValid() {
		t.Errorf("without a document: got %+v", s)
	}

	for _, bad := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--log-level=loud"}, nil, "--log-level"},
		{[]string{"--transparent-proxy-config=/nonexistent"}, nil, "--transparent-proxy-config"},
		{nil, map[string]string{"KUMA_READINESS_PORT": "99999"}, "KUMA_READINESS_PORT"},
		{nil, map[string]string{"KUMA_DNS_ENABLED": "maybe"}, "KUMA_DNS_ENABLED"},
		{nil, map[string]string{"INSTANCE_IP": "pod"}, "INSTANCE_IP"},
	} {
		if _, _, err := parse(bad.args, env(bad.env)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%v %v: %v, want an error naming %s", bad.args, bad.env, err, bad.want)
		}
	}
}

// TestServe: the readiness endpoint and the listeners of the configuration's ports.
func TestServe(t *testing.T) {
	tp := api.DefaultTransparentProxyConfig()
	tp.IPFamilyMode = api.IPFamilyIPv4
	tp.Redirect.Inbound.Port, tp.Redirect.Outbound.Port = uint16(netkit.FreePort(t)), uint16(netkit.FreePort(t))
	tp.Redirect.DNS.Enabled, tp.Redirect.DNS.Port = true, uint16(netkit.FreePort(t))
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644)
	s := &Settings{TP: tp, ReadinessPort: uint16(netkit.FreePort(t)), ProbeProxyPort: uint16(netkit.FreePort(t)), ResolvConf: resolv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	rec := newRecorder()
	go func() { done <- serve(ctx, s, quiet, rec) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	url := "http://127.0.0.1:" + strconv.Itoa(int(s.ReadinessPort)) + "/ready"
	var resp *http.Response
	poll.Until(t, "the stand-in answers "+url, func() (bool, error) {
		var err error
		resp, err = http.Get(url)
		return err == nil, nil
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "READY" {
		t.Errorf("/ready: %d %q", resp.StatusCode, body)
	}
	// The record says how the process was started.
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(int(s.ReadinessPort)) + "/standin")
	if err != nil {
		t.Fatal(err)
	}
	var got seen.Record
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Args, os.Args) || got.UID != os.Getuid() || got.GID != os.Getgid() || len(got.Env) == 0 ||
		got.CapEff == "" || got.NoNewPrivs == "" {
		t.Errorf("/standin: %+v; want this process's arguments, credentials and environment", got)
	}
	if i := slices.IndexFunc(got.Mounts, func(m seen.Mount) bool { return m.Path == "/" }); i < 0 {
		t.Errorf("/standin: mounts %+v lack /", got.Mounts)
	}
	for _, port := range []uint16{tp.Redirect.Inbound.Port, tp.Redirect.Outbound.Port, tp.Redirect.DNS.Port, s.ProbeProxyPort} {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(int(port)))
		if err != nil {
			t.Errorf("port %d: %v", port, err)
			continue
		}
		c.Close()
	}
}

// TestForward: a connection is forwarded both ways; inbound from the passthrough source.
func TestForward(t *testing.T) {
	upstream := listen(t, func(c net.Conn) {
		line, _ := bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, c.RemoteAddr().(*net.TCPAddr).IP.String()+" "+line)
	})
	rec := &recorder{}
	for _, tc := range []struct {
		f      *forwarder
		source string
	}{
		{&forwarder{name: "outbound", log: quiet, rec: rec}, "127.0.0.1"},
		{&forwarder{name: "inbound", log: quiet, rec: rec, passthrough: true}, "127.0.0.6"},
	} {
		proxy := listen(t, func(c net.Conn) { tc.f.forward(c.(*net.TCPConn), upstream) })
		c, err := net.Dial("tcp", proxy.String())
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "hello\n")
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if want := tc.source + " hello\n"; err != nil || string(got) != want {
			t.Errorf("%s: got %q, %v; want %q", tc.f.name, got, err, want)
		}
	}
	// Each connection is in the record, with where it went and from where the stand-in dialed.
	if len(rec.events) != 2 {
		t.Fatalf("recorded %+v; want the two connections", rec.events)
	}
	for i, want := range []struct{ kind, via string }{{"outbound", "127.0.0.1"}, {"inbound", "127.0.0.6"}} {
		e := rec.events[i]
		if e.Kind != want.kind || e.To != upstream.String() || !strings.HasPrefix(e.Via, want.via+":") || e.From == "" || e.Err != "" {
			t.Errorf("event %d: %+v; want %s to %s via %s", i, e, want.kind, upstream, want.via)
		}
	}
}

// TestNotRedirected: a connection that reached the port without REDIRECT is closed, rather than
// forwarded to the port itself.
func TestNotRedirected(t *testing.T) {
	l, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := &recorder{}
	go (&forwarder{name: "outbound", log: quiet, rec: rec}).serve(l)
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read %d bytes, %v; want the connection closed", n, err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.events) != 1 || rec.events[0].Err == "" {
		t.Errorf("recorded %+v; want the closed connection, with why", rec.events)
	}
}

// TestDNS: UDP queries go to the first nameserver that answers, TCP connections to the first.
func TestDNS(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(resolv, []byte("search default.svc\nnameserver 10.96.0.10\nnameserver fd00::10\noptions ndots:5\n"), 0o644)
	d := &dnsForwarder{log: quiet, rec: &recorder{}}
	if err := d.readResolvConf(resolv); err != nil {
		t.Fatal(err)
	}
	if want := []netip.AddrPort{netip.MustParseAddrPort("10.96.0.10:53"), netip.MustParseAddrPort("[fd00::10]:53")}; len(d.upstreams) != 2 ||
		d.upstreams[0] != want[0] || d.upstreams[1] != want[1] {
		t.Errorf("upstreams %v, want %v", d.upstreams, want)
	}

	ns, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := ns.ReadFromUDP(buf)
			if err != nil {
				return
			}
			ns.WriteToUDP(append([]byte("answer to "), buf[:n]...), from)
		}
	}()
	d.upstreams = []netip.AddrPort{ns.LocalAddr().(*net.UDPAddr).AddrPort()}
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go d.serveUDP(pc)
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("query"))
	buf := make([]byte, 512)
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "answer to query" {
		t.Errorf("got %q, %v", buf[:n], err)
	}
	// The answer is written after the query is recorded.
	d.rec.mu.Lock()
	defer d.rec.mu.Unlock()
	if e := d.rec.events; len(e) != 1 || e[0].Kind != "dns" || e[0].From != c.LocalAddr().String() || e[0].To != d.upstreams[0].String() {
		t.Errorf("recorded %+v; want the query from %s to %s", e, c.LocalAddr(), d.upstreams[0])
	}
}

// TestProbes: each kind of rewritten probe, healthy and not, against real servers on the pod's
// address, reached from the passthrough source.
func TestProbes(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusInternalServerError)
		}
		if r.Host != "example.test" && r.URL.Path == "/host" || r.Header.Get("X-App") != "1" && r.URL.Path == "/header" ||
			r.URL.RawQuery != "q=1" && r.URL.Path == "/query" {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer app.Close()
	tlsApp := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer tlsApp.Close()
	grpcListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("ready", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(grpcListener)
	defer srv.Stop()

	port := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	httpPort, tlsPort, grpcPort := port(app.Listener.Addr().String()), port(tlsApp.Listener.Addr().String()), port(grpcListener.Addr().String())
	closed := strconv.Itoa(netkit.FreePort(t))
	rec := &recorder{}
	proxy := httptest.NewServer(&prober{podIP: netip.MustParseAddr("127.0.0.1"), log: quiet, rec: rec})
	defer proxy.Close()
	for _, tc := range []struct {
		path    string
		headers map[string]string
		status  int
	}{
		{"/" + httpPort + "/healthz", nil, 200},
		{"/" + httpPort, nil, 200},
		{"/" + httpPort + "/fail", nil, 500},
		{"/" + httpPort + "/host", map[string]string{headerHost: "example.test"}, 200},
		{"/" + httpPort + "/header", map[string]string{"X-App": "1", headerTimeout: "3"}, 200},
		{"/" + httpPort + "/query?q=1", nil, 200},
		{"/" + closed + "/healthz", nil, 503},
		{"/" + tlsPort + "/healthz", map[string]string{headerScheme: "HTTPS"}, 200},
		// As kuma-dp, any other spelling keeps verification on, which a self-signed app fails.
		{"/" + tlsPort + "/healthz", map[string]string{headerScheme: "https"}, 503},
		{"/tcp/" + httpPort, nil, 200},
		{"/tcp/" + closed, nil, 503},
		// A generous timeout: kuma-dp's default second is short on a busy machine.
		{"/grpc/" + grpcPort, map[string]string{headerTimeout: "10"}, 200},
		{"/grpc/" + grpcPort, map[string]string{headerGRPCService: "ready", headerTimeout: "10"}, 200},
		{"/grpc/" + grpcPort, map[string]string{headerGRPCService: "other"}, 503},
		{"/grpc/" + closed, nil, 503},
		{"/healthz", nil, 503},
	} {
		req, _ := http.NewRequest("GET", proxy.URL+tc.path, nil)
		for k, v := range tc.headers {
			req.Header.Set(k, v)
		}
		resp, err := proxy.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %v: %d %s, want %d", tc.path, tc.headers, resp.StatusCode, body, tc.status)
		}
		// Each probe is recorded with its kind, the scheme it was asked for and its answer.
		e := rec.events[len(rec.events)-1]
		kind := "http"
		if k, _, ok := strings.Cut(strings.TrimPrefix(tc.path, "/"), "/"); ok && (k == "tcp" || k == "grpc") {
			kind = k
		}
		if s := tc.headers[headerScheme]; s != "" {
			kind += " " + s
		}
		if path, _, _ := strings.Cut(tc.path, "?"); e.Kind != "probe" || e.Detail != kind+" "+path || e.Status != tc.status {
			t.Errorf("%s %v: recorded %+v; want %q with %d", tc.path, tc.headers, e, kind+" "+path, tc.status)
		}
	}
}

// listen serves each connection with handle on an ephemeral loopback port.
func listen(t *testing.T, handle func(net.Conn)) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// TestKillall: the preStop hook's killall signals the processes of that name, and only them, and
// fails when there is none; processes are found in a stand-in for /proc that names a child
// process of the test, so that no other process of the machine is touched.
func TestKillall(t *testing.T) {
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	proc := t.TempDir()
	for pid, comm := range map[int]string{child.Process.Pid: "kuma-dp", os.Getpid(): "kuma-dp", 1: "init"} {
		dir := filepath.Join(proc, strconv.Itoa(pid))
		os.Mkdir(dir, 0o755)
		os.WriteFile(filepath.Join(dir, "comm"), []byte(comm+"\n"), 0o644)
	}
	var stderr strings.Builder
	if code := killall([]string{"-USR2", "kuma-dp"}, proc, &stderr); code != 0 {
		t.Fatalf("killall -USR2 kuma-dp: exit %d: %s", code, stderr.String())
	}
	err := child.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGUSR2 {
		t.Errorf("the child ended with %v; want SIGUSR2", err)
	}
	if code := killall([]string{"-s", "TERM", "envoy"}, proc, &stderr); code != 1 || !strings.Contains(stderr.String(), "envoy: no process found") {
		t.Errorf("killall of no process: exit %d, %q; want 1 and why", code, stderr.String())
	}
	for spec, want := range map[string]syscall.Signal{"USR2": syscall.SIGUSR2, "SIGUSR2": syscall.SIGUSR2, "usr2": syscall.SIGUSR2, "12": syscall.SIGUSR2, "TERM": syscall.SIGTERM} {
		if got, err := parseSignal(spec); err != nil || got != want {
			t.Errorf("signal %s: %v, %v; want %v", spec, got, err, want)
		}
	}
	if _, err := parseSignal("NOPE"); err == nil {
		t.Error("signal NOPE: no error")
	}
}

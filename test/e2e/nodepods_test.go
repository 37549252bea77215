package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/images/kumadp/seen"
	"github.com/meshinit/meshinit/test/node"
	"github.com/meshinit/meshinit/test/nodechart"
	"github.com/meshinit/meshinit/test/podkit"
	"github.com/meshinit/meshinit/webhook/inject"
)

// echo is a container of the echo image with its servers on the given addresses ("" for none).
func (e *nodeEnv) echo(ctx context.Context, t *testing.T, name, httpAddr, httpsAddr, tcpAddr, grpcAddr string) corev1.Container {
	return corev1.Container{Name: name, Image: e.Image(ctx, t, "echo"),
		Args:            []string{"--http=" + httpAddr, "--https=" + httpsAddr, "--tcp=" + tcpAddr, "--grpc=" + grpcAddr},
		SecurityContext: echoUser()}
}

// echoUser is the echo image's own user, said in the pod so that the injector knows the app
// cannot switch to the sidecar's UID (it warns otherwise).
func echoUser() *corev1.SecurityContext {
	return &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532)}
}

// app is echo serving HTTP on 8080 only, Ready once it does (through the probe proxy): the app of
// the pods that need no more.
func (e *nodeEnv) app(ctx context.Context, t *testing.T) corev1.Container {
	c := e.echo(ctx, t, "app", ":8080", "", "", "")
	c.Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
	c.ReadinessProbe = probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(8080)}})
	return c
}

// client is a container of the echo image that fetches url once and exits.
func (e *nodeEnv) client(ctx context.Context, t *testing.T, name, url string) corev1.Container {
	return corev1.Container{Name: name, Image: e.Image(ctx, t, "echo"), Args: []string{"--get=" + url}, SecurityContext: echoUser()}
}

// podSpec is a pod of these containers that resolves names with the node's nameserver (the node
// has no cluster DNS), and stops quickly.
func podSpec(containers ...corev1.Container) corev1.PodSpec {
	return corev1.PodSpec{
		Containers:                    containers,
		DNSPolicy:                     corev1.DNSNone,
		DNSConfig:                     &corev1.PodDNSConfig{Nameservers: []string{node.BridgeIP.String()}},
		TerminationGracePeriodSeconds: ptr.To[int64](2),
	}
}

// probe is a probe checked every second.
func probe(h corev1.ProbeHandler) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 2, FailureThreshold: 30}
}

// unhealthyAfter is how many failures of one probe end a wait for a pod's readiness: the first may
// come while the app starts, more mean it does not pass.
const unhealthyAfter = 10

// waitReady waits until a pod is Ready and returns it. It fails fast, saying why, when a container
// keeps failing (CrashLoopBackOff and the like) or a probe keeps failing (the kubelet's Unhealthy
// events), with kuma-init's log.
func (e *nodeEnv) waitReady(ctx context.Context, t *testing.T, namespace, name string) *corev1.Pod {
	t.Helper()
	pod, err := e.ready(ctx, namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	return pod
}

// ready is waitReady's wait, which returns why it failed rather than fail the test.
func (e *nodeEnv) ready(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		lw := cache.NewFilteredListWatchFromClient(e.Clientset.CoreV1().RESTClient(), "events", namespace, func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("involvedObject.name", name).String()
		})
		ev, err := nodechart.WaitFor(ctx, lw, func(ev *corev1.Event) (bool, error) {
			return ev.Reason == "Unhealthy" && ev.Count >= unhealthyAfter, nil
		}, nil)
		if err == nil {
			cancel(fmt.Errorf("%s, %d times", ev.Message, ev.Count))
		}
	}()
	pod, err := e.WaitPodReady(ctx, namespace, name)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && cause != context.Canceled {
			err = fmt.Errorf("%w\n%v", err, cause)
		}
		return pod, fmt.Errorf("%w%s", err, e.initLog(context.WithoutCancel(ctx), pod))
	}
	e.notePorts()
	return pod, nil
}

// initLog is the log of the pod's kuma-init, or of its kuma-validation in CNI mode, for a
// failure's message.
func (e *nodeEnv) initLog(ctx context.Context, pod *corev1.Pod) string {
	if pod == nil {
		return ""
	}
	for _, name := range []string{inject.InitName, inject.ValidationName} {
		if podkit.Container(pod, name) == nil {
			continue
		}
		// A container that could not even start (its program missing) says why only here.
		last := ""
		if s := status(pod, name); s != nil && s.LastTerminationState.Terminated != nil {
			t := s.LastTerminationState.Terminated
			last = fmt.Sprintf("\n%s last ended: exit %d, %s: %s", name, t.ExitCode, t.Reason, t.Message)
		}
		log, err := e.logs(ctx, pod, name)
		if err != nil {
			return fmt.Sprintf("%s\n%s's log: %v", last, name, err)
		}
		return fmt.Sprintf("%s\n%s's log:\n%s", last, name, log)
	}
	return ""
}

// logs is a container's log, through the API server and the kubelet, as kubectl logs reads it.
func (e *nodeEnv) logs(ctx context.Context, pod *corev1.Pod, container string) (string, error) {
	data, err := e.Clientset.CoreV1().Pods(pod.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: container}).DoRaw(ctx)
	return string(data), err
}

// status returns the status of the pod's init container or container of that name.
func status(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// standin reads the record of a pod's kuma-sidecar, the stand-in (GET /standin on its readiness
// port), from inside the pod, on loopback, where no rule redirects.
func (e *nodeEnv) standin(ctx context.Context, t *testing.T, pod *corev1.Pod) seen.Record {
	t.Helper()
	port := strconv.Itoa(api.SidecarReadinessPort)
	if c := podkit.Container(pod, inject.SidecarName); c != nil {
		for _, env := range c.Env {
			if env.Name == "KUMA_READINESS_PORT" && env.Value != "" {
				port = env.Value
			}
		}
	}
	var rec seen.Record
	body, err := e.getFromPod(ctx, pod, "http://127.0.0.1:"+port+"/standin")
	if err == nil {
		err = json.Unmarshal(body, &rec)
	}
	if err != nil {
		t.Fatalf("the record of %s/%s's kuma-sidecar: %v", pod.Namespace, pod.Name, err)
	}
	return rec
}

// getFromPod sends GET url from the pod's network namespace: the connection is the pod's, as an
// app's would be (as root, whose traffic is redirected like any app's).
func (e *nodeEnv) getFromPod(ctx context.Context, pod *corev1.Pod, url string) ([]byte, error) {
	var body []byte
	err := e.InPodNetNS(ctx, pod, func() error {
		var err error
		body, err = get(ctx, url)
		return err
	})
	return body, err
}

// get sends GET url and returns the body of a 2xx answer. The connection is dialled on the calling
// goroutine's thread, so that from InPodNetNS it is the pod's (http.Client would dial on another);
// HTTPS certificates are not verified (echo's are self-signed).
func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	host := req.URL.Host
	if req.URL.Port() == "" {
		host = net.JoinHostPort(host, "80")
	}
	c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if req.URL.Scheme == "https" {
		c = tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	}
	req.Close = true
	if err := req.Write(c); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		err = fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return body, err
}

// report is echo's answer to an HTTP request: where it came from as the app saw it.
type report struct {
	Path   string `json:"path"`
	TLS    bool   `json:"tls"`
	Remote string `json:"remote"`
	Local  string `json:"local"`
}

// echoGet sends GET url, from the pod's network namespace or, with pod nil, from the host, and
// returns echo's report.
func (e *nodeEnv) echoGet(ctx context.Context, t *testing.T, pod *corev1.Pod, url string) report {
	t.Helper()
	var body []byte
	var err error
	if pod != nil {
		body, err = e.getFromPod(ctx, pod, url)
	} else {
		body, err = get(ctx, url)
	}
	var rep report
	if err == nil {
		err = json.Unmarshal(body, &rep)
	}
	if err != nil {
		from := "the host"
		if pod != nil {
			from = pod.Name
		}
		t.Fatalf("GET %s from %s: %v", url, from, err)
	}
	return rep
}

// passthrough is the source the app sees on inbound traffic through the sidecar, for addresses
// of ip's family: Envoy's passthrough address.
func passthrough(ip string) string {
	if family(ip) == "4" {
		return "127.0.0.6"
	}
	return "::6"
}

// hostReachesThroughSidecar GETs path from the app's port 8080 at the pod's address ip, from the
// host, and fails the test unless the app saw it come through the sidecar.
func (e *nodeEnv) hostReachesThroughSidecar(ctx context.Context, t *testing.T, ip, path string) {
	t.Helper()
	url := "http://" + net.JoinHostPort(ip, "8080") + path
	if rep := e.echoGet(ctx, t, nil, url); host(rep.Remote) != passthrough(ip) {
		t.Errorf("GET %s from the host reached the app from %s; want the sidecar's passthrough, %s", url, rep.Remote, passthrough(ip))
	}
}

// host is the address part of host:port.
func host(addrPort string) string {
	h, _, _ := net.SplitHostPort(addrPort)
	return h
}

// events returns the events of a kind in a record that went to a destination ("" for any), or
// came from a host ("" for any).
func events(rec seen.Record, kind, to, fromHost string) []seen.Event {
	var out []seen.Event
	for _, ev := range rec.Events {
		if ev.Kind == kind && (to == "" || ev.To == to) && (fromHost == "" || host(ev.From) == fromHost) {
			out = append(out, ev)
		}
	}
	return out
}

// natRules is the nat table of a pod's network namespace, as the node's iptables of backend (nft
// or legacy) lists it.
func (e *nodeEnv) natRules(ctx context.Context, t *testing.T, pod *corev1.Pod, backend string) string {
	t.Helper()
	out, err := e.Nsenter(ctx, pod, "iptables-"+backend+"-save", "-t", "nat")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(out)) {
		if !strings.HasPrefix(line, "#") {
			lines = append(lines, counters.ReplaceAllString(line, ""))
		}
	}
	return strings.Join(lines, "")
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// legacyTables lists the legacy (x_tables) tables of a pod's network namespace: reading the
// kernel's list creates none, where iptables-legacy-save would.
func (e *nodeEnv) legacyTables(ctx context.Context, t *testing.T, pod *corev1.Pod) string {
	t.Helper()
	out, err := e.Nsenter(ctx, pod, "cat", "/proc/self/net/ip_tables_names")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// meshChains are the chains of ours that every injected pod's nat table has.
var meshChains = []string{"KUMA_MESH_INBOUND", "KUMA_MESH_OUTBOUND", "KUMA_MESH_INBOUND_REDIRECT", "KUMA_MESH_OUTBOUND_REDIRECT"}

// hasMeshRules says whether a nat table holds our chains, each with rules.
func hasMeshRules(nat string) bool {
	for _, chain := range meshChains {
		if !strings.Contains(nat, "\n-A "+chain+" ") && !strings.HasPrefix(nat, "-A "+chain+" ") {
			return false
		}
	}
	return true
}

// startedAsInjected checks that the process a container runs (the stand-in's record of itself)
// was started exactly as the pod spec says: its arguments (the image's entrypoint and command
// where the spec has none, as the kubelet does), every variable of its environment, its user and
// group, capabilities and privilege escalation, its root filesystem, and each volume mounted where
// the spec says with the files it should hold.
func (e *nodeEnv) startedAsInjected(t *testing.T, pod *corev1.Pod, c *corev1.Container, image string, rec seen.Record) {
	t.Helper()
	entrypoint, cmd := e.ImageCommand(t, image)
	want := slices.Concat(c.Command, c.Args)
	switch {
	case len(c.Command) == 0 && len(c.Args) == 0:
		want = slices.Concat(entrypoint, cmd)
	case len(c.Command) == 0:
		want = slices.Concat(entrypoint, c.Args)
	}
	env := map[string]string{}
	for _, v := range c.Env {
		env[v.Name] = v.Value
		if f := v.ValueFrom; f != nil && f.FieldRef != nil {
			env[v.Name] = fieldValue(pod, f.FieldRef.FieldPath)
		}
	}
	for i, arg := range want {
		// The kubelet expands $(VAR) in arguments from the container's environment.
		want[i] = expand(arg, env)
	}
	if !slices.Equal(rec.Args, want) {
		t.Errorf("%s runs %q; the pod spec says %q", c.Name, rec.Args, want)
	}
	got := map[string]string{}
	for _, kv := range rec.Env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for _, v := range c.Env {
		if value, ok := got[v.Name]; !ok {
			t.Errorf("%s's environment lacks %s", c.Name, v.Name)
		} else if (v.ValueFrom == nil || v.ValueFrom.FieldRef != nil) && value != env[v.Name] {
			t.Errorf("%s's %s is %q; the pod spec says %q", c.Name, v.Name, value, env[v.Name])
		}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if sc.RunAsUser != nil && int64(rec.UID) != *sc.RunAsUser || sc.RunAsGroup != nil && int64(rec.GID) != *sc.RunAsGroup {
		t.Errorf("%s runs as %d:%d; the pod spec says %v:%v", c.Name, rec.UID, rec.GID, ptr.Deref(sc.RunAsUser, -1), ptr.Deref(sc.RunAsGroup, -1))
	}
	if caps := sc.Capabilities; caps != nil && slices.Contains(caps.Drop, "ALL") && len(caps.Add) == 0 && rec.CapEff != "0000000000000000" {
		t.Errorf("%s has capabilities %s; the pod spec drops them all", c.Name, rec.CapEff)
	}
	if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && rec.NoNewPrivs != "1" {
		t.Errorf("%s may gain privileges (NoNewPrivs %q); the pod spec says it may not", c.Name, rec.NoNewPrivs)
	}
	mounts := map[string]seen.Mount{}
	for _, m := range rec.Mounts {
		mounts[m.Path] = m
	}
	if ptr.Deref(sc.ReadOnlyRootFilesystem, false) && !mounts["/"].ReadOnly {
		t.Errorf("%s's root filesystem is writable; the pod spec says read-only", c.Name)
	}
	for _, vm := range c.VolumeMounts {
		m, ok := mounts[vm.MountPath]
		if !ok {
			t.Errorf("%s has nothing mounted at %s; the pod spec mounts %s there", c.Name, vm.MountPath, vm.Name)
			continue
		}
		if m.ReadOnly != vm.ReadOnly {
			t.Errorf("%s's %s is mounted read-only %v; the pod spec says %v", c.Name, vm.MountPath, m.ReadOnly, vm.ReadOnly)
		}
		for path, content := range volumeFiles(pod, vm.Name) {
			f, ok := m.Files[path]
			if !ok {
				t.Errorf("%s's %s holds no %s (it holds %v)", c.Name, vm.MountPath, path, m.Files)
				continue
			}
			if sum := sha256.Sum256([]byte(content)); content != anyContent && f.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("%s's %s/%s is not what the pod's %s projects", c.Name, vm.MountPath, path, vm.Name)
			}
		}
	}
}

// fieldValue is the value of a pod's field as the downward API gives it to an environment
// variable.
func fieldValue(pod *corev1.Pod, path string) string {
	if m := fieldRef.FindStringSubmatch(path); m != nil {
		return map[string]map[string]string{"annotations": pod.Annotations, "labels": pod.Labels}[m[1]][m[2]]
	}
	return map[string]string{"metadata.name": pod.Name, "metadata.namespace": pod.Namespace, "metadata.uid": string(pod.UID),
		"status.podIP": pod.Status.PodIP, "status.hostIP": pod.Status.HostIP, "spec.nodeName": pod.Spec.NodeName,
		"spec.serviceAccountName": pod.Spec.ServiceAccountName}[path]
}

// anyContent stands for a file whose content a test cannot know (a service account token).
const anyContent = "\x00any"

// volumeFiles are the files a volume of the pod projects, by path, with what they hold: the
// downward API's annotations and labels, or anyContent.
func volumeFiles(pod *corev1.Pod, name string) map[string]string {
	files := map[string]string{}
	downward := func(items []corev1.DownwardAPIVolumeFile) {
		for _, item := range items {
			if item.FieldRef == nil {
				files[item.Path] = anyContent // a resource's quantity
				continue
			}
			files[item.Path] = fieldValue(pod, item.FieldRef.FieldPath)
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Name != name {
			continue
		}
		switch {
		case v.DownwardAPI != nil:
			downward(v.DownwardAPI.Items)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				switch {
				case s.DownwardAPI != nil:
					downward(s.DownwardAPI.Items)
				case s.ServiceAccountToken != nil:
					files[s.ServiceAccountToken.Path] = anyContent
				case s.ConfigMap != nil:
					for _, item := range s.ConfigMap.Items {
						files[item.Path] = anyContent
					}
				}
			}
		}
	}
	return files
}

// expand replaces $(NAME) with NAME's value where env has one, as the kubelet expands a
// container's arguments ($$ escapes a $).
func expand(s string, env map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		if ref == "$$" {
			return "$"
		}
		if v, ok := env[ref[2:len(ref)-1]]; ok {
			return v
		}
		return ref
	})
}

var varRef = regexp.MustCompile(`\$\$|\$\([A-Za-z_][A-Za-z0-9_.-]*\)`)

// dnsFromPod sends a UDP query to addr from the pod's network namespace and returns the answer.
func (e *nodeEnv) dnsFromPod(ctx context.Context, pod *corev1.Pod, addr, query string) (answer, from string, err error) {
	err = e.InPodNetNS(ctx, pod, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		from = c.LocalAddr().String()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(query)); err != nil {
			return err
		}
		buf := make([]byte, 512)
		n, err := c.Read(buf)
		answer = string(buf[:n])
		return err
	})
	return answer, from, err
}

// tcpEchoFromPod sends a line to addr over TCP from the pod's network namespace and returns what
// came back, and the connection's local address.
func (e *nodeEnv) tcpEchoFromPod(ctx context.Context, pod *corev1.Pod, addr, line string) (answer, from string, err error) {
	err = e.InPodNetNS(ctx, pod, func() error {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		from = c.LocalAddr().String()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, line); err != nil {
			return err
		}
		c.(*net.TCPConn).CloseWrite()
		data, err := io.ReadAll(c)
		answer = string(data)
		return err
	})
	return answer, from, err
}

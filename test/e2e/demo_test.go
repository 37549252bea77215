package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/images/kumadp/seen"
	"github.com/meshinit/meshinit/test/node"
	"github.com/meshinit/meshinit/test/nodechart"
	"github.com/meshinit/meshinit/webhook/inject"
)

// demoRan says that TestDemo ran, so that TestMain says how it cleaned up, and interrupted that
// it was interrupted, so that it does not show the node's logs as for a failure.
var demoRan, interrupted bool

// The demo's pods: web, annotated with demoAnnotations, and peer, the other end of web's outbound
// traffic, in the labelled namespace demo.
const demoNS = "demo"

var demoAnnotations = map[string]string{api.AnnotationExcludeInboundPorts: "8443", api.AnnotationExcludeOutboundPorts: "9000"}

// TestDemo is `make demo`: the whole product on a real node of this machine, narrated on standard
// output: the chart installed, the injector running as a pod, a pod injected by it running on the
// kubelet (its containers, kuma-init's log), and real traffic judged by where it went. It runs the
// images `make images` put in bin/images. The node is stopped, and the host checked to be as it
// was, when the test binary ends (TestMain), on failure and on Ctrl-C too.
func TestDemo(t *testing.T) {
	demoRan = true
	out := os.Stdout
	// Interrupted, the demo fails at its next step, and TestMain still stops the node.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer func() { interrupted = ctx.Err() != nil }()
	d := &demo{t: t, ctx: ctx, out: out, steps: 7}
	fmt.Fprintln(out, "meshinit demo: the chart on a one-node cluster, an injected pod running on its kubelet, and real traffic through its sidecar")
	fmt.Fprintln(out)

	e := d.node()

	ready := d.begin("images from bin/images imported into containerd: injector, kuma-init, the kuma-dp stand-in (as kuma-sidecar), echo (the app)")
	values := e.BaseValues(ctx, t)
	e.Image(ctx, t, "echo")
	ready()

	ready = d.begin(fmt.Sprintf("chart installed with the Helm SDK (release %s in %s, dataPlane.image=%s): the injector runs as a pod, the API server calls it through its Service",
		nodechart.Release, nodechart.ReleaseNamespace, nodechart.Dig(values, "dataPlane", "image")))
	e.Chart(ctx, t, nil)
	ready()

	ready = d.begin(fmt.Sprintf("namespace %s labelled %s=enabled; pod %s/web created, annotated %s, and pod %s/peer",
		demoNS, api.LabelSidecarInjection, demoNS, annotations(demoAnnotations), demoNS))
	e.MeshedNamespace(ctx, t, demoNS)
	webApp := e.echo(ctx, t, "app", ":8080", ":8443", "", "")
	webApp.ReadinessProbe = e.app(ctx, t).ReadinessProbe
	webApp.Ports = []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 8443}}
	web := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: demoNS, Annotations: demoAnnotations}, Spec: podSpec(webApp)}
	peerApp := e.echo(ctx, t, "app", ":8080", "", ":9000", "")
	peerApp.ReadinessProbe = webApp.ReadinessProbe
	peer := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "peer", Namespace: demoNS}, Spec: podSpec(peerApp)}
	warnings, err := create(ctx, e.Config, web)
	if err == nil {
		_, err = create(ctx, e.Config, peer)
	}
	if err != nil {
		t.Fatal(err)
	}
	ready()
	cfg, err := api.ParseTransparentProxyConfig([]byte(web.Annotations[api.AnnotationTransparentProxyConfig]))
	if err != nil {
		t.Fatal(err)
	}
	d.showInjected(web, cfg, e.injectionOf(ctx, t, demoNS, "web"), warnings)

	ready = d.begin("the pods run on the node: kuma-init, then kuma-sidecar, then the app")
	web, peer = e.waitReady(ctx, t, demoNS, "web"), e.waitReady(ctx, t, demoNS, "peer")
	ready()
	d.showRunning(web)
	log, err := e.logs(ctx, web, inject.InitName)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(out, "      kuma-init's log (kubectl logs web -c kuma-init):")
	d.indent("  " + strings.ReplaceAll(strings.TrimSpace(log), "\n", "\n  "))

	ready = d.begin(fmt.Sprintf("real traffic, from the host (%s) and from the pods, to web (%s) and peer (%s)",
		node.BridgeIP, web.Status.PodIP, peer.Status.PodIP))
	verdicts := e.demoTraffic(ctx, t, web, peer)
	ready()
	d.table(verdicts)
	if sidecarLog, err := e.logs(ctx, web, inject.SidecarName); err == nil {
		fmt.Fprintln(out, "      what web's kuma-sidecar logged (kubectl logs web -c kuma-sidecar), its last lines:")
		lines := strings.Split(strings.TrimSpace(sidecarLog), "\n")
		d.indent("  " + strings.Join(lines[max(0, len(lines)-8):], "\n  "))
	}

	bad := map[string]string{api.AnnotationExcludeInboundPorts: "22,80000"}
	ready = d.begin(fmt.Sprintf("a pod annotated %s is refused", annotations(bad)))
	_, err = create(ctx, e.Config, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: demoNS, Annotations: bad}, Spec: podSpec(webApp)})
	if err == nil {
		t.Fatalf("a pod annotated %s was admitted", annotations(bad))
	}
	ready()
	d.indent(err.Error())

	fmt.Fprintln(out)
	if slices.ContainsFunc(verdicts, func(v verdict) bool { return v.went != v.expected }) {
		t.Errorf("some traffic did not go where it should (see the table)")
	} else {
		fmt.Fprintf(out, "All %d paths went where they should.\n", len(verdicts))
	}
}

// demo narrates the steps.
type demo struct {
	t     *testing.T
	ctx   context.Context
	out   io.Writer
	step  int
	steps int
}

// begin shows a step as it starts; the function it returns shows how long it took, and stops the
// demo if it was interrupted meanwhile.
func (d *demo) begin(what string) (ready func()) {
	d.step++
	fmt.Fprintf(d.out, "[%d/%d] %s ... ", d.step, d.steps, what)
	start := time.Now()
	return func() {
		d.t.Helper()
		fmt.Fprintf(d.out, "%.1fs\n", time.Since(start).Seconds())
		if d.ctx.Err() != nil {
			d.t.Fatal("interrupted")
		}
	}
}

func (d *demo) indent(text string) {
	for line := range strings.SplitSeq(text, "\n") {
		fmt.Fprintln(d.out, "      "+line)
	}
}

// node starts the node, or says it runs already (started by another test of this binary).
func (d *demo) node() *nodeEnv {
	if shared.env != nil {
		ready := d.begin("one-node cluster: running already, started by an earlier test")
		ready()
		return onNode(d.ctx, d.t, nil)
	}
	ready := d.begin("one-node cluster from bin/: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd with runc, a kubelet")
	var steps []string
	e := onNode(d.ctx, d.t, func(format string, args ...any) { steps = append(steps, fmt.Sprintf(format, args...)) })
	ready()
	for _, s := range steps {
		if !strings.Contains(s, "cleanup of a previous run: 0s") {
			d.indent(strings.TrimPrefix(s, "node: "))
		}
	}
	return e
}

// showInjected prints what the injector made of the pod: its containers, why and with which
// settings, and its effective configuration, cfg.
func (d *demo) showInjected(pod *corev1.Pod, cfg *api.TransparentProxyConfig, inj injection, warnings []string) {
	w := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "      injected by the injector's pod (%s):\n", inj.Reason)
	for _, c := range pod.Spec.InitContainers {
		detail := strings.Join(slices.Concat(c.Command, c.Args), " ")
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			detail = "native sidecar (restartPolicy: Always), " + detail
		}
		fmt.Fprintf(w, "      init container\t%s\t%s\t%s\n", c.Name, c.Image, detail)
	}
	for _, c := range pod.Spec.Containers {
		fmt.Fprintf(w, "      container\t%s\t%s\t%s\n", c.Name, c.Image, strings.Join(slices.Concat(c.Command, c.Args), " "))
	}
	w.Flush()
	fmt.Fprintln(d.out, "      where each setting came from (the injector's log):")
	w = tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	for _, s := range inj.Settings {
		fmt.Fprintf(w, "        %s\t%s\t%s\n", s.Name, s.Value, s.Source)
	}
	w.Flush()
	for _, warning := range warnings {
		fmt.Fprintln(d.out, "      admission warning: "+warning)
	}
	fmt.Fprintf(d.out, "      the effective configuration (%s):\n", api.AnnotationTransparentProxyConfig)
	doc, err := cfg.Marshal()
	if err != nil {
		d.t.Fatal(err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(doc)), "\n") {
		fmt.Fprintln(d.out, "        "+line)
	}
}

// showRunning prints the pod's containers as the kubelet reports them, in the order they started.
func (d *demo) showRunning(pod *corev1.Pod) {
	w := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "      pod %s on node %s, IPs %v:\n", pod.Name, pod.Spec.NodeName, podIPs(pod))
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, s := range list {
			state := "waiting"
			switch {
			case s.State.Terminated != nil:
				state = fmt.Sprintf("exited %d (%s), ran %s to %s", s.State.Terminated.ExitCode, s.State.Terminated.Reason,
					s.State.Terminated.StartedAt.Format(time.TimeOnly), s.State.Terminated.FinishedAt.Format(time.TimeOnly))
			case s.State.Running != nil:
				state = "running since " + s.State.Running.StartedAt.Format(time.TimeOnly)
			}
			fmt.Fprintf(w, "        %s\t%s\tready %v\t%s\n", s.Name, s.Image, s.Ready, state)
		}
	}
	w.Flush()
}

func podIPs(pod *corev1.Pod) []string {
	var ips []string
	for _, ip := range pod.Status.PodIPs {
		ips = append(ips, ip.IP)
	}
	return ips
}

// verdict is a path the demo sent traffic along, where it went and where it should have.
type verdict struct {
	path, to, went, expected string
}

// The ways traffic can go, as the demo tells them apart.
const (
	viaSidecar = "through kuma-sidecar"
	direct     = "straight to it, no sidecar"
)

// demoTraffic sends traffic along each path of the demo and says where it went, from what the app
// saw (echo's report of where a request came from) and what web's sidecar saw (the stand-in's
// record).
func (e *nodeEnv) demoTraffic(ctx context.Context, t *testing.T, web, peer *corev1.Pod) []verdict {
	var out []verdict
	webIP, peerIP := web.Status.PodIP, peer.Status.PodIP
	seenBy := func(kind, to string) bool { return len(events(e.standin(ctx, t, web), kind, to, "")) > 0 }
	// Inbound, the app tells: through the sidecar, it sees Envoy's passthrough source.
	route := func(remote string) string {
		if remote == passthrough(remote) {
			return viaSidecar
		}
		return direct
	}
	inbound := func(path, ip string, port int, scheme string, through bool) {
		to := net.JoinHostPort(ip, fmt.Sprint(port))
		remote := host(e.echoGet(ctx, t, nil, scheme+"://"+to+"/demo").Remote)
		want := node.BridgeIP.String()
		if through {
			want = passthrough(ip)
		}
		out = append(out, verdict{path, to, fmt.Sprintf("%s (the app saw %s)", route(remote), remote), fmt.Sprintf("%s (the app saw %s)", route(want), want)})
	}
	outbound := func(path, to string, send func() error, expected string) {
		if err := send(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		went := direct
		if seenBy("outbound", to) {
			went = viaSidecar
		}
		out = append(out, verdict{path, to, went, expected})
	}
	inbound("inbound HTTP from the host", webIP, 8080, "http", true)
	for _, ip := range podIPs(web) {
		if family(ip) == "6" {
			inbound("inbound HTTP from the host, IPv6", ip, 8080, "http", true)
		}
	}
	inbound("inbound HTTPS from the host, to 8443 (excluded)", webIP, 8443, "https", false)
	outbound("outbound HTTP from web to peer", net.JoinHostPort(peerIP, "8080"), func() error {
		_, err := e.getFromPod(ctx, web, "http://"+net.JoinHostPort(peerIP, "8080")+"/demo")
		return err
	}, viaSidecar)
	outbound("outbound TCP from web to peer's 9000 (excluded)", net.JoinHostPort(peerIP, "9000"), func() error {
		_, _, err := e.tcpEchoFromPod(ctx, web, net.JoinHostPort(peerIP, "9000"), "hello\n")
		return err
	}, direct)
	ns := net.JoinHostPort(node.BridgeIP.String(), "53")
	answer, from, err := e.dnsFromPod(ctx, web, ns, "demo query")
	if err != nil || answer != "answer to demo query" {
		t.Fatalf("DNS from web to %s: %q, %v", ns, answer, err)
	}
	went := direct
	if slices.ContainsFunc(events(e.standin(ctx, t, web), "dns", "", ""), func(ev seen.Event) bool { return ev.From == from }) {
		went = "through kuma-sidecar's DNS proxy"
	}
	out = append(out, verdict{"DNS from web to its nameserver", ns, went, "through kuma-sidecar's DNS proxy"})
	return out
}

// family is "4" or "6", an address's IP family.
func family(ip string) string {
	if net.ParseIP(ip).To4() != nil {
		return "4"
	}
	return "6"
}

// table prints the verdicts: path, destination, where it went, where it should have, the verdict.
func (d *demo) table(verdicts []verdict) {
	w := tabwriter.NewWriter(d.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "      path\tsent to\twent\texpected\tverdict")
	for _, v := range verdicts {
		result := "ok"
		if v.went != v.expected {
			result = "WRONG"
		}
		fmt.Fprintf(w, "      %s\t%s\t%s\t%s\t%s\n", v.path, v.to, v.went, v.expected, result)
	}
	w.Flush()
}

// annotations spells annotations as a pod's YAML would, sorted.
func annotations(a map[string]string) string {
	var parts []string
	for k, v := range a {
		parts = append(parts, fmt.Sprintf("%s: %q", k, v))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// create creates the pod through the API server, and returns the admission warnings the API
// server passed on; pod is updated as stored.
func create(ctx context.Context, config *rest.Config, pod *corev1.Pod) ([]string, error) {
	warnings := &warningLog{}
	cfg := rest.CopyConfig(config)
	cfg.WarningHandler = warnings
	cl, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	err = cl.Create(ctx, pod)
	return warnings.messages, err
}

// injectionOf finds in the injector pod's log why and how it injected the pod namespace/name.
func (e *nodeEnv) injectionOf(ctx context.Context, t *testing.T, namespace, name string) injection {
	t.Helper()
	pods, err := e.Clientset.CoreV1().Pods(nodechart.ReleaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=injector"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		log, err := e.logs(ctx, &p, "injector")
		if err != nil {
			t.Fatal(err)
		}
		if inj, ok := findInjection(log, namespace, name); ok {
			return inj
		}
	}
	t.Fatalf("no injector's log has the injection of %s/%s", namespace, name)
	return injection{}
}

// findInjection finds in an injector's log (JSON lines) its entry for the injected pod
// namespace/name.
func findInjection(log, namespace, name string) (injection, bool) {
	scanner := bufio.NewScanner(strings.NewReader(log))
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		var entry struct {
			injection
			Msg       string `json:"msg"`
			Namespace string `json:"namespace"`
			Pod       string `json:"pod"`
		}
		if json.Unmarshal(scanner.Bytes(), &entry) == nil && entry.Msg == "injected" && entry.Namespace == namespace && entry.Pod == name {
			return entry.injection, true
		}
	}
	return injection{}, false
}

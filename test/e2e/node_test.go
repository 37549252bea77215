package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/images/kumadp/seen"
	"github.com/meshinit/meshinit/test/node"
	"github.com/meshinit/meshinit/test/nodechart"
	"github.com/meshinit/meshinit/test/podkit"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/webhook/inject"
)

// meshNS is the labelled namespace of the node tests' workloads.
const meshNS = "mesh"

// nodeLogf hears of the shared node's start: in the verbose output only, since the node outlives
// the test that starts it.
func nodeLogf(format string, args ...any) {
	if testing.Verbose() {
		fmt.Printf(format+"\n", args...)
	}
}

// deployment is a one-replica Deployment of pods labelled app=name.
func deployment(name string, annotations map[string]string, spec corev1.PodSpec) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: meshNS},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations}, Spec: spec}}}
}

// The ports of web, the app the node tests send traffic to: HTTP, HTTPS (its inbound excluded),
// TCP (its outbound excluded: web's connections to other pods' 9000 bypass its sidecar) and gRPC.
const (
	webHTTP, webHTTPS, webTCP, webGRPC = 8080, 8443, 9000, 9090
)

// workloads starts, once, the two Deployments the node tests share in the labelled namespace, and
// returns their pods once Ready: web, echo with HTTP, TCP and gRPC probes and excluded ports, and
// peer, plain echo, the other pod of pod-to-pod traffic. The injector is the chart's, in init mode.
func (e *nodeEnv) workloads(ctx context.Context, t *testing.T) (web, peer *corev1.Pod) {
	t.Helper()
	e.Chart(ctx, t, nil)
	e.MeshedNamespace(ctx, t, meshNS)
	app := e.echo(ctx, t, "app", fmt.Sprint(":", webHTTP), fmt.Sprint(":", webHTTPS), fmt.Sprint(":", webTCP), fmt.Sprint(":", webGRPC))
	app.Args = append(app.Args, "--grpc-services=web")
	for _, p := range []int32{webHTTP, webHTTPS, webTCP, webGRPC} {
		app.Ports = append(app.Ports, corev1.ContainerPort{ContainerPort: p})
	}
	app.ReadinessProbe = probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(webHTTP)}})
	app.LivenessProbe = probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(webTCP)}})
	app.StartupProbe = probe(corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: webGRPC, Service: ptr.To("web")}})
	other := e.echo(ctx, t, "app", ":8080", ":8443", ":9000", "")
	other.ReadinessProbe = e.app(ctx, t).ReadinessProbe
	for _, d := range []*appsv1.Deployment{
		deployment("web", map[string]string{
			api.AnnotationExcludeInboundPorts:  fmt.Sprint(webHTTPS),
			api.AnnotationExcludeOutboundPorts: fmt.Sprint(webTCP),
		}, podSpec(app)),
		deployment("peer", nil, podSpec(other)),
	} {
		if err := e.Client.Create(ctx, d); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	return e.deployedPod(ctx, t, "web"), e.deployedPod(ctx, t, "peer")
}

// deployedPod waits for the pod of the Deployment name in the labelled namespace and returns it
// once Ready.
func (e *nodeEnv) deployedPod(ctx context.Context, t *testing.T, name string) *corev1.Pod {
	t.Helper()
	pod, err := nodechart.WaitFor(ctx, e.List("pods", meshNS, "app="+name), func(p *corev1.Pod) (bool, error) {
		return p.DeletionTimestamp == nil, nil
	}, nil)
	if err != nil {
		t.Fatalf("waiting for a pod of %s: %v", name, err)
	}
	return e.waitReady(ctx, t, meshNS, pod.Name)
}

// TestInjectedOnNode: the chart installed with the Helm SDK on a real node, the injector running
// from its image and called by the API server through its Service, and the pods it injects
// running on the kubelet: kuma-init as injected, kuma-sidecar the kuma-dp stand-in started
// exactly as injected, real traffic through it from the host and from another pod, excluded ports
// around it, DNS to it, the app's probes through its probe proxy, a Job that completes, and a pod
// with its own init containers and a native sidecar.
func TestInjectedOnNode(t *testing.T) {
	ctx := t.Context()
	e := onNode(ctx, t, nodeLogf)
	web, peer := e.workloads(ctx, t)
	webIP, peerIP := web.Status.PodIP, peer.Status.PodIP
	bridge := node.BridgeIP.String()

	t.Run("the injector runs from its image and the API server calls it through its Service", func(t *testing.T) {
		pods, err := e.Clientset.CoreV1().Pods(nodechart.ReleaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=injector"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 || pods.Items[0].Spec.Containers[0].Image != e.Image(ctx, t, "injector") || pods.Items[0].Status.Phase != corev1.PodRunning {
			t.Errorf("injector pods %v; want one running %s", names(pods.Items), e.Image(ctx, t, "injector"))
		}
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		if err := e.Client.Get(ctx, client.ObjectKey{Name: nodechart.InjectorName}, &mwc); err != nil {
			t.Fatal(err)
		}
		for _, w := range mwc.Webhooks {
			if s := w.ClientConfig.Service; s == nil || s.Name != nodechart.InjectorName || s.Namespace != nodechart.ReleaseNamespace || w.ClientConfig.URL != nil {
				t.Errorf("webhook %s calls %+v; want the Service %s/%s", w.Name, w.ClientConfig, nodechart.ReleaseNamespace, nodechart.InjectorName)
			}
		}
		for _, p := range []*corev1.Pod{web, peer} {
			if p.Annotations[api.AnnotationSidecarInjected] != "true" || podkit.Container(p, inject.SidecarName) == nil || podkit.Container(p, inject.InitName) == nil {
				t.Errorf("pod %s was not injected: %v", p.Name, p.Annotations)
			}
		}
	})

	t.Run("kuma-init ran as injected, its rules on the nft backend", func(t *testing.T) {
		if img := podkit.Container(web, inject.InitName).Image; img != e.Image(ctx, t, "kuma-init") {
			t.Errorf("kuma-init's image is %s; want %s", img, e.Image(ctx, t, "kuma-init"))
		}
		if s := status(web, inject.InitName); s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			t.Errorf("kuma-init: %+v; want it done, with exit 0", s)
		}
		log, err := e.logs(ctx, web, inject.InitName)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("kuma-init's log:\n%s", log)
		if nat := e.natRules(ctx, t, web, "nft"); !hasMeshRules(nat) {
			t.Errorf("the pod's nat table (nft) lacks our chains:\n%s", nat)
		}
		if tables := e.legacyTables(ctx, t, web); tables != "" {
			t.Errorf("the pod has legacy tables %q; want none", tables)
		}
	})

	t.Run("kuma-sidecar is the stand-in, started exactly as injected", func(t *testing.T) {
		c := podkit.Container(web, inject.SidecarName)
		if c.Image != e.Image(ctx, t, "kuma-dp-standin") {
			t.Errorf("kuma-sidecar's image is %s; want the stand-in, %s", c.Image, e.Image(ctx, t, "kuma-dp-standin"))
		}
		e.startedAsInjected(t, web, c, c.Image, e.standin(ctx, t, web))
	})

	t.Run("the app's HTTP, TCP and gRPC probes pass through the probe proxy", func(t *testing.T) {
		// The liveness probe starts once the startup probe has passed: it may not have run yet.
		want := []string{fmt.Sprintf("http /%d/ready", webHTTP), fmt.Sprintf("tcp /tcp/%d", webTCP), fmt.Sprintf("grpc /grpc/%d", webGRPC)}
		var missing []string
		var rec seen.Record
		err := poll.Wait(ctx, func() (bool, error) {
			rec, missing = e.standin(ctx, t, web), nil
			for _, w := range want {
				if !slices.ContainsFunc(events(rec, "probe", "", bridge), func(ev seen.Event) bool { return ev.Detail == w && ev.Status == 200 }) {
					missing = append(missing, w)
				}
			}
			return len(missing) == 0, nil
		})
		if err != nil {
			t.Errorf("the probe proxy passed no %q from the kubelet (%v); it saw %+v", missing, err, events(rec, "probe", "", ""))
		}
	})

	t.Run("from the host, inbound goes through the sidecar, excluded ports around it", func(t *testing.T) {
		rep := e.echoGet(ctx, t, nil, fmt.Sprintf("http://%s:%d/from-host", webIP, webHTTP))
		if host(rep.Remote) != "127.0.0.6" {
			t.Errorf("the app saw the host's request come from %s; want the sidecar's passthrough, 127.0.0.6", rep.Remote)
		}
		to := net.JoinHostPort(webIP, fmt.Sprint(webHTTP))
		if len(events(e.standin(ctx, t, web), "inbound", to, bridge)) == 0 {
			t.Errorf("the sidecar saw no inbound connection from the host to %s", to)
		}
		rep = e.echoGet(ctx, t, nil, fmt.Sprintf("https://%s:%d/excluded", webIP, webHTTPS))
		if host(rep.Remote) != bridge || !rep.TLS {
			t.Errorf("the app saw the host's request to the excluded port come from %s (TLS %v); want the host, %s, over TLS", rep.Remote, rep.TLS, bridge)
		}
		if ev := events(e.standin(ctx, t, web), "inbound", net.JoinHostPort(webIP, fmt.Sprint(webHTTPS)), ""); len(ev) > 0 {
			t.Errorf("the sidecar saw connections to the excluded port: %+v", ev)
		}
		// IPv6 alike: the pods are dual-stack, and so are the rules.
		var webIP6 string
		for _, ip := range web.Status.PodIPs {
			if net.ParseIP(ip.IP).To4() == nil {
				webIP6 = ip.IP
			}
		}
		if webIP6 == "" {
			t.Fatalf("web has no IPv6 address: %v", web.Status.PodIPs)
		}
		rep = e.echoGet(ctx, t, nil, fmt.Sprintf("http://%s/from-host-ipv6", net.JoinHostPort(webIP6, fmt.Sprint(webHTTP))))
		if host(rep.Remote) != "::6" {
			t.Errorf("the app saw the host's IPv6 request come from %s; want the sidecar's passthrough, ::6", rep.Remote)
		}
	})

	t.Run("from another pod, through both pods' sidecars", func(t *testing.T) {
		rep := e.echoGet(ctx, t, peer, fmt.Sprintf("http://%s:%d/from-peer", webIP, webHTTP))
		if host(rep.Remote) != "127.0.0.6" {
			t.Errorf("the app saw peer's request come from %s; want the sidecar's passthrough, 127.0.0.6", rep.Remote)
		}
		to := net.JoinHostPort(webIP, fmt.Sprint(webHTTP))
		if out := events(e.standin(ctx, t, peer), "outbound", to, ""); !slices.ContainsFunc(out, func(ev seen.Event) bool { return host(ev.Via) == peerIP }) {
			t.Errorf("peer's sidecar did not take its connection to %s out from %s: %+v", to, peerIP, out)
		}
		if len(events(e.standin(ctx, t, web), "inbound", to, peerIP)) == 0 {
			t.Errorf("web's sidecar saw no inbound connection from peer (%s)", peerIP)
		}
	})

	t.Run("outbound goes through the sidecar, excluded ports around it", func(t *testing.T) {
		e.echoGet(ctx, t, web, fmt.Sprintf("http://%s:8080/from-web", peerIP))
		to := net.JoinHostPort(peerIP, "8080")
		if len(events(e.standin(ctx, t, web), "outbound", to, "")) == 0 {
			t.Errorf("web's sidecar saw no outbound connection to %s", to)
		}
		excluded := net.JoinHostPort(peerIP, fmt.Sprint(webTCP))
		answer, _, err := e.tcpEchoFromPod(ctx, web, excluded, "hello\n")
		if err != nil || answer != "hello\n" {
			t.Fatalf("TCP to %s from web: %q, %v", excluded, answer, err)
		}
		if ev := events(e.standin(ctx, t, web), "outbound", excluded, ""); len(ev) > 0 {
			t.Errorf("web's sidecar saw its connections to the excluded port %d: %+v", webTCP, ev)
		}
	})

	t.Run("DNS goes to the sidecar's DNS port", func(t *testing.T) {
		query := fmt.Sprintf("query %d", time.Now().UnixNano())
		answer, from, err := e.dnsFromPod(ctx, web, net.JoinHostPort(bridge, "53"), query)
		if err != nil || answer != "answer to "+query {
			t.Fatalf("a query to the pod's nameserver: %q, %v", answer, err)
		}
		if !slices.ContainsFunc(events(e.standin(ctx, t, web), "dns", "", ""), func(ev seen.Event) bool { return ev.From == from && ev.Err == "" }) {
			t.Errorf("the sidecar's DNS proxy did not forward the query from %s", from)
		}
		if e.dns.queriesFrom(webIP) == 0 {
			t.Errorf("the nameserver got no query from the pod's address %s", webIP)
		}
	})

	t.Run("a Job completes, its traffic through its sidecar", func(t *testing.T) {
		url := fmt.Sprintf("http://%s:%d/from-job", webIP, webHTTP)
		spec := podSpec(e.client(ctx, t, "get", url))
		spec.RestartPolicy = corev1.RestartPolicyNever
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: meshNS},
			Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: corev1.PodTemplateSpec{Spec: spec}}}
		if err := e.Client.Create(ctx, job); err != nil {
			t.Fatal(err)
		}
		if _, err := e.WaitJobComplete(ctx, meshNS, "once"); err != nil {
			t.Fatal(err)
		}
		pods, err := e.Clientset.CoreV1().Pods(meshNS).List(ctx, metav1.ListOptions{LabelSelector: "job-name=once"})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("the Job's pods: %v, %v", names(pods.Items), err)
		}
		pod := &pods.Items[0]
		log, err := e.logs(ctx, pod, inject.SidecarName)
		if err != nil {
			t.Fatal(err)
		}
		to := net.JoinHostPort(webIP, fmt.Sprint(webHTTP))
		if !strings.Contains(log, "listener=outbound") || !strings.Contains(log, "to="+to) {
			t.Errorf("the Job's sidecar logged no outbound connection to %s:\n%s", to, log)
		}
	})

	// The pod of Kuma's native layout: kuma-init, then kuma-sidecar, then the app's init
	// containers, so that they are in the mesh too.
	layered := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "layered", Namespace: meshNS},
		Spec: podSpec(e.app(ctx, t))}
	appSidecar := e.echo(ctx, t, "app-sidecar", "", ":8444", "", "")
	appSidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	appSidecar.ReadinessProbe = probe(corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/tls", Port: intstr.FromInt32(8444), Scheme: corev1.URISchemeHTTPS}})
	fromInit := net.JoinHostPort(webIP, fmt.Sprint(webHTTP))
	layered.Spec.InitContainers = []corev1.Container{e.client(ctx, t, "app-init", "http://"+fromInit+"/from-init"), appSidecar}
	if err := e.Client.Create(ctx, layered); err != nil {
		t.Fatal(err)
	}
	// Its kuma-sidecar started, and its app's init container done: the record can be read.
	layered = e.waitPod(ctx, t, meshNS, "layered", func(p *corev1.Pod) bool {
		s, i := status(p, inject.SidecarName), status(p, "app-init")
		return s != nil && ptr.Deref(s.Started, false) && i != nil && i.State.Terminated != nil
	})

	t.Run("an app's init container reaches a service through the sidecar", func(t *testing.T) {
		if s := status(layered, "app-init"); s.State.Terminated.ExitCode != 0 {
			t.Errorf("app-init: %+v", s.State.Terminated)
		}
		if len(events(e.standin(ctx, t, layered), "outbound", fromInit, "")) == 0 {
			var order []string
			for _, c := range layered.Spec.InitContainers {
				order = append(order, c.Name)
			}
			t.Errorf("app-init's request to %s did not go through kuma-sidecar; the init containers run in the order %v, "+
				"where Kuma's native layout runs kuma-init and kuma-sidecar before the app's", fromInit, order)
		}
	})

	t.Run("an app native sidecar's HTTPS probe passes through the probe proxy; the pod is Ready", func(t *testing.T) {
		_, err := e.ready(ctx, meshNS, "layered")
		rec := e.standin(ctx, t, layered)
		if !slices.ContainsFunc(events(rec, "probe", "", bridge), func(ev seen.Event) bool {
			return strings.HasSuffix(ev.Detail, "/8444/tls") && strings.Contains(strings.ToUpper(ev.Detail), "HTTPS") && ev.Status == 200
		}) {
			t.Errorf("the probe proxy passed no HTTPS probe of app-sidecar; it saw %+v", events(rec, "probe", "", ""))
		}
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("kuma-sidecar's preStop hook starts its drain", func(t *testing.T) {
		c := podkit.Container(layered, inject.SidecarName)
		if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Exec == nil {
			t.Fatalf("kuma-sidecar, a native sidecar, has no preStop exec hook to start kuma-dp's drain: %+v", c.Lifecycle)
		}
		cmd := c.Lifecycle.PreStop.Exec.Command
		stdout, stderr, code, err := e.ExecSync(ctx, layered, inject.SidecarName, cmd...)
		if err != nil || code != 0 {
			t.Fatalf("preStop %q: exit %d, %v\n%s%s", cmd, code, err, stdout, stderr)
		}
		if len(events(e.standin(ctx, t, layered), "signal", "", "")) == 0 {
			t.Errorf("the stand-in got no signal from preStop %q", cmd)
		}
	})
}

// waitPod waits until cond holds for a pod and returns it.
func (e *nodeEnv) waitPod(ctx context.Context, t *testing.T, namespace, name string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	lw := cache.NewFilteredListWatchFromClient(e.Clientset.CoreV1().RESTClient(), "pods", namespace, nodechart.ByName(name))
	pod, err := nodechart.WaitFor(ctx, lw, func(p *corev1.Pod) (bool, error) { return cond(p), nil }, nil)
	if err != nil {
		t.Fatalf("waiting for pod %s/%s: %v%s", namespace, name, err, e.initLog(context.WithoutCancel(ctx), pod))
	}
	return pod
}

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// containers says, for each container of a pod, which one runs and how often it restarted.
func containers(p *corev1.Pod) map[string]string {
	out := map[string]string{}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range list {
			out[s.Name] = fmt.Sprintf("%s, %d restarts", s.ContainerID, s.RestartCount)
		}
	}
	return out
}

// snapshot is what must hold of a running injected pod across restarts of the node's parts.
type snapshot struct {
	pod        *corev1.Pod
	containers map[string]string
	rules      string
}

func (e *nodeEnv) snapshot(ctx context.Context, t *testing.T, pod *corev1.Pod) snapshot {
	t.Helper()
	return snapshot{pod: pod, containers: containers(pod), rules: e.natRules(ctx, t, pod, "nft")}
}

// holds checks that the pod of s is Ready again with the same containers, none restarted, and the
// same rules, and that the host's traffic to it still goes through its sidecar.
func (e *nodeEnv) holds(ctx context.Context, t *testing.T, s snapshot) {
	t.Helper()
	pod := e.waitReady(ctx, t, s.pod.Namespace, s.pod.Name)
	if got := containers(pod); !maps.Equal(got, s.containers) {
		t.Errorf("%s's containers are %v; they were %v", pod.Name, got, s.containers)
	}
	if got := e.natRules(ctx, t, pod, "nft"); got != s.rules {
		t.Errorf("%s's rules changed:\n%s\nthey were:\n%s", pod.Name, got, s.rules)
	}
	e.hostReachesThroughSidecar(ctx, t, pod.Status.PodIP, "/still")
}

// TestRestartsOnNode: containerd and then the kubelet restarted under injected pods: the pods keep
// their containers, their rules and their traffic through the sidecar, and new pods are still
// injected and start.
func TestRestartsOnNode(t *testing.T) {
	ctx := t.Context()
	e := onNode(ctx, t, nodeLogf)
	web, _ := e.workloads(ctx, t)
	before := e.snapshot(ctx, t, web)
	t.Run("containerd restarted", func(t *testing.T) {
		if err := e.RestartContainerd(ctx); err != nil {
			t.Fatal(err)
		}
		e.holds(ctx, t, before)
	})
	t.Run("kubelet restarted", func(t *testing.T) {
		if err := e.RestartKubelet(ctx); err != nil {
			t.Fatal(err)
		}
		e.holds(ctx, t, before)
	})
	t.Run("new pods are injected and start", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "after-restarts", Namespace: meshNS}, Spec: podSpec(e.app(ctx, t))}
		if err := e.Client.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		pod = e.waitReady(ctx, t, meshNS, pod.Name)
		if pod.Annotations[api.AnnotationSidecarInjected] != "true" || !hasMeshRules(e.natRules(ctx, t, pod, "nft")) {
			t.Errorf("the new pod is not injected, or has no rules: %v", pod.Annotations)
		}
	})
}

// TestLegacyBackendOnNode: kuma-init, as injected, on the legacy iptables backend (its image has
// only the legacy tools): it runs with its read-only root filesystem, its rules land in the legacy
// tables, and traffic goes through the sidecar.
func TestLegacyBackendOnNode(t *testing.T) {
	ctx := t.Context()
	e := onNode(ctx, t, nodeLogf)
	legacy := e.Image(ctx, t, "kuma-init-legacy")
	e.Chart(ctx, t, map[string]any{"dataPlane": map[string]any{"initImage": map[string]any{"repository": "kuma-init-legacy"}}})
	e.MeshedNamespace(ctx, t, meshNS)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: meshNS}, Spec: podSpec(e.app(ctx, t))}
	if err := e.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod = e.waitReady(ctx, t, meshNS, pod.Name)
	if img := podkit.Container(pod, inject.InitName).Image; img != legacy {
		t.Errorf("kuma-init's image is %s; want %s", img, legacy)
	}
	if tables := e.legacyTables(ctx, t, pod); !strings.Contains(" "+tables+" ", " nat ") {
		t.Errorf("the pod's legacy tables are %q; want nat among them", tables)
	}
	if nat := e.natRules(ctx, t, pod, "legacy"); !hasMeshRules(nat) {
		t.Errorf("the pod's nat table (legacy) lacks our chains:\n%s", nat)
	}
	if nat := e.natRules(ctx, t, pod, "nft"); strings.Contains(nat, "KUMA_MESH") {
		t.Errorf("the pod's nat table (nft) has our chains too:\n%s", nat)
	}
	e.hostReachesThroughSidecar(ctx, t, pod.Status.PodIP, "/legacy")
}

// TestNFTablesBackendOnNode: kuma-init, as injected, on the nftables backend the chart chooses,
// from kuma-init-nft, the image with no iptables at all: its rules are our nftables tables and
// nothing else in the pod's namespace (no iptables table, nft's or legacy), and traffic of both
// families goes through the sidecar.
func TestNFTablesBackendOnNode(t *testing.T) {
	ctx := t.Context()
	e := onNode(ctx, t, nodeLogf)
	image := e.Image(ctx, t, "kuma-init-nft")
	e.Chart(ctx, t, map[string]any{"dataPlane": map[string]any{"transparentProxyBackend": "nftables",
		"initImage": map[string]any{"repository": "kuma-init-nft"}}})
	e.MeshedNamespace(ctx, t, meshNS)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "nftables", Namespace: meshNS}, Spec: podSpec(e.app(ctx, t))}
	if err := e.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod = e.waitReady(ctx, t, meshNS, pod.Name)
	if img := podkit.Container(pod, inject.InitName).Image; img != image {
		t.Errorf("kuma-init's image is %s; want %s", img, image)
	}
	if cfg, err := api.ParseTransparentProxyConfig([]byte(pod.Annotations[api.AnnotationTransparentProxyConfig])); err != nil || cfg.Backend() != api.BackendNFTables {
		t.Errorf("the pod's configuration (%v) does not name the nftables backend:\n%s", err, pod.Annotations[api.AnnotationTransparentProxyConfig])
	}
	nft := func(args ...string) string {
		t.Helper()
		out, err := e.Nsenter(ctx, pod, append([]string{"nft"}, args...)...)
		if err != nil {
			t.Fatalf("nft %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if tables := nft("list", "tables"); tables != "table ip meshinit\ntable ip6 meshinit\n" {
		t.Errorf("the pod's nftables tables are:\n%s\nwant ours alone, ip and ip6 meshinit", tables)
	}
	for _, family := range []string{"ip", "ip6"} {
		table := nft("list", "table", family, "meshinit")
		for _, chain := range meshChains {
			if !strings.Contains(table, "chain "+chain+" {") {
				t.Errorf("the pod's %s meshinit table lacks %s:\n%s", family, chain, table)
			}
		}
	}
	if tables := e.legacyTables(ctx, t, pod); tables != "" {
		t.Errorf("the pod has legacy tables %q", tables)
	}
	if len(pod.Status.PodIPs) != 2 {
		t.Errorf("the pod's addresses are %v; want one of each family", pod.Status.PodIPs)
	}
	for _, ip := range pod.Status.PodIPs {
		e.hostReachesThroughSidecar(ctx, t, ip.IP, "/nftables")
	}
}

// TestCNIOnNode: the chart in CNI mode, chained into the node's own conflist: install-cni runs
// from the DaemonSet and chains kuma-cni into the conflist containerd reads, and containerd runs
// kuma-cni for the injected pods, which have no kuma-init and whose validation passes; a rollout
// of the DaemonSet and a restart of the kubelet leave running pods as they were and new ones
// meshed.
func TestCNIOnNode(t *testing.T) {
	ctx := t.Context()
	e := onNode(ctx, t, nodeLogf)
	e.Chart(ctx, t, map[string]any{"cni": map[string]any{"enabled": true, "chained": true,
		"netDir": e.CNIConfDir(), "binDir": e.CNIBinDir(), "confName": node.CNIConfList}})
	e.MeshedNamespace(ctx, t, meshNS)
	chained := func(t *testing.T) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(e.CNIConfDir(), node.CNIConfList))
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Plugins []struct {
				Type string `json:"type"`
			} `json:"plugins"`
		}
		if err := json.Unmarshal(data, &list); err != nil || len(list.Plugins) != 2 || list.Plugins[0].Type != "bridge" || list.Plugins[1].Type != "kuma-cni" {
			t.Errorf("the node's conflist is not the bridge chained to kuma-cni (%v):\n%s", err, data)
		}
		if _, err := os.Stat(filepath.Join(e.CNIBinDir(), "kuma-cni")); err != nil {
			t.Errorf("kuma-cni is not in the node's CNI directory: %v", err)
		}
	}
	meshed := func(t *testing.T, name string) snapshot {
		t.Helper()
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: meshNS}, Spec: podSpec(e.app(ctx, t))}
		if err := e.Client.Create(ctx, pod); err != nil {
			t.Fatal(err)
		}
		pod = e.waitReady(ctx, t, meshNS, name)
		if c := podkit.Container(pod, inject.InitName); c != nil {
			t.Errorf("%s has kuma-init in CNI mode", name)
		}
		if s := status(pod, inject.ValidationName); s == nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
			t.Errorf("%s's %s: %+v; want it done, with exit 0", name, inject.ValidationName, s)
		}
		s := e.snapshot(ctx, t, pod)
		if !hasMeshRules(s.rules) {
			t.Errorf("%s has no rules from kuma-cni:\n%s", name, s.rules)
		}
		e.holds(ctx, t, s)
		return s
	}
	t.Run("install-cni chains kuma-cni into the node's conflist", chained)
	var first snapshot
	t.Run("pods get their rules from kuma-cni as containerd runs it; their validation passes", func(t *testing.T) {
		first = meshed(t, "cni")
	})
	if first.pod == nil {
		t.FailNow()
	}
	t.Run("a rollout of the DaemonSet", func(t *testing.T) {
		old := e.cniPod(ctx, t)
		patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"meshinit.test/rollout":%q}}}}}`, time.Now().Format(time.RFC3339Nano))
		if _, err := e.Clientset.AppsV1().DaemonSets(nodechart.CNINamespace).Patch(ctx, nodechart.CNIName, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		e.WaitCNI(ctx, t)
		if _, err := nodechart.WaitFor(ctx, e.List("pods", nodechart.CNINamespace, "app="+nodechart.CNIName), nil, func(pods []*corev1.Pod) bool {
			return len(pods) == 1 && pods[0].UID != old.UID && pods[0].DeletionTimestamp == nil && podReady(pods[0])
		}); err != nil {
			t.Fatalf("waiting for the DaemonSet's new pod alone: %v", err)
		}
		chained(t)
		e.holds(ctx, t, first)
		meshed(t, "cni-after-rollout")
	})
	t.Run("kubelet restarted", func(t *testing.T) {
		daemon := e.cniPod(ctx, t)
		if err := e.RestartKubelet(ctx); err != nil {
			t.Fatal(err)
		}
		e.holds(ctx, t, first)
		if p := e.cniPod(ctx, t); !maps.Equal(containers(p), containers(daemon)) {
			t.Errorf("install-cni's containers are %v; they were %v", containers(p), containers(daemon))
		}
		chained(t)
		meshed(t, "cni-after-kubelet")
	})
}

// cniPod returns the CNI DaemonSet's pod, once Ready.
func (e *nodeEnv) cniPod(ctx context.Context, t *testing.T) *corev1.Pod {
	t.Helper()
	pod, err := nodechart.WaitFor(ctx, e.List("pods", nodechart.CNINamespace, "app="+nodechart.CNIName), func(p *corev1.Pod) (bool, error) {
		return p.DeletionTimestamp == nil && podReady(p), nil
	}, nil)
	if err != nil {
		t.Fatalf("waiting for the CNI DaemonSet's pod: %v", err)
	}
	return pod
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

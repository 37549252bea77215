package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/hostile"
	"github.com/meshinit/meshinit/test/nodechart"
	"github.com/meshinit/meshinit/test/podkit"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/protection"
	"github.com/meshinit/meshinit/test/scrape"
	"github.com/meshinit/meshinit/webhook/inject"
)

// hostileNS is the namespace, not meshed, of the pod that attacks the injector.
const hostileNS = "hostile"

// TestStallOnNode is issue 15's stall on the real node: a pod on the cluster network keeps 59 TLS
// connections to the injector's pod, each with 280 KiB of an admission request sent and then
// silence (16.1 MiB in all, just over the 16 MiB all bodies share), and opens another whenever the
// injector ends one for its slowness; meanwhile pods are created through the API server in a
// meshed namespace, under the chart's failurePolicy (Fail). Each must be stored with its sidecar.
// The creates begin once the injector has answered a request of the flood with "try again": the
// flood holds all the injector lets it hold. With the injector before the fix, all 10 creates
// failed ("received invalid webhook response"); the 230 KiB a connection (13 MiB) left
// that injector room enough, and every create passed.
func TestStallOnNode(t *testing.T) {
	ctx := t.Context()
	e := onNode(ctx, t, nodeLogf)
	e.Chart(ctx, t, nil)
	e.MeshedNamespace(ctx, t, meshNS)
	injector := e.injectorPod(ctx, t)
	webhookAddr := net.JoinHostPort(injector.Status.PodIP, port(t, injector, "webhook"))
	metricsURL := "http://" + net.JoinHostPort(injector.Status.PodIP, port(t, injector, "metrics")) + "/metrics"
	dial, err := e.PodDialer(ctx, e.attacker(ctx, t))
	if err != nil {
		t.Fatal(err)
	}

	before := scrape.Get(t, metricsURL)
	flood := hostile.Flood{Addr: webhookAddr, Dial: dial, Conns: 59, Send: 280 << 10}.Start(t)
	poll.Until(t, `the injector answers a request of the flood with "try again"`, func() (bool, error) {
		answers, _ := flood.Outcome()
		return slices.ContainsFunc(slices.Collect(maps.Keys(answers)), func(a string) bool { return strings.HasSuffix(a, "try again") }), nil
	})
	var failed, uninjected []string
	for i := range 10 {
		pod, err := e.createGated(ctx, t, meshNS, fmt.Sprintf("stall-%d", i))
		switch {
		case err != nil:
			failed = append(failed, err.Error())
		case !isInjected(pod):
			uninjected = append(uninjected, pod.Name)
		}
	}
	after := scrape.Get(t, metricsURL)
	answers, refused := flood.Outcome()
	flood.Stop()
	t.Logf("figures: stall on the node: %d creates failed, %d pods stored without their sidecar; the injector closed %v of the "+
		"flood's connections at once and refused %v of its requests; the flood saw %d connections closed at once, answers %v",
		len(failed), len(uninjected), countsSince(before, after, connectionsRefused), countsSince(before, after, requestsRefused), refused, answers)
	if len(failed) > 0 || len(uninjected) > 0 {
		t.Errorf("while a pod held its connections to the injector: creates failed: %q; stored without their sidecar: %v", failed, uninjected)
	}
}

// The injector's counters of what its guard refused (webhook/metrics.go), by reason.
const (
	requestsRefused    = "sidecar_injector_requests_refused_total"
	connectionsRefused = "sidecar_injector_connections_refused_total"
)

// countsSince is the counter name, by reason, between two scrapes.
func countsSince(before, after scrape.Metrics, name string) map[string]float64 {
	delta := after.CountsBy(name, "reason")
	for reason, n := range before.CountsBy(name, "reason") {
		delta[reason] -= n
	}
	return delta
}

// TestRewriteRefusedOnNode is issue 15's rewrite after admission on the real node, with the chart's
// ValidatingAdmissionPolicy as installed: an injected pod held by a scheduling gate, so that it
// never runs, keeps the configuration it was admitted with; an update that rewrites it and drops
// the injected marker is refused with the policy's reason, and so is an ephemeral container, as
// kubectl debug adds one, that runs as the sidecar's UID.
func TestRewriteRefusedOnNode(t *testing.T) {
	ctx := t.Context()
	e := onNode(ctx, t, nodeLogf)
	e.Chart(ctx, t, nil)
	e.MeshedNamespace(ctx, t, meshNS)
	canary, err := e.createGated(ctx, t, meshNS, "policy-canary")
	if err != nil {
		t.Fatal(err)
	}
	protection.WaitEnforced(t, e.Client, canary)
	pod, err := e.createGated(ctx, t, meshNS, "rewritten")
	if err != nil || !isInjected(pod) {
		t.Fatalf("the pod: %v; injected %v", err, err == nil && isInjected(pod))
	}

	err = protection.Patch(t, e.Client, pod, map[string]any{"metadata": map[string]any{"annotations": map[string]any{
		api.AnnotationSidecarInjected: nil, api.AnnotationTransparentProxyConfig: protection.Forged}}})
	want := protection.Denied(pod.Name, protection.Marks(api.AnnotationSidecarInjected+", "+api.AnnotationTransparentProxyConfig))
	if err == nil || err.Error() != want {
		t.Errorf("rewriting the configuration and dropping the injected marker: %v\nwant: %s", err, want)
	}
	var got corev1.Pod
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(pod), &got); err != nil {
		t.Fatal(err)
	}
	if !isInjected(&got) || got.Annotations[api.AnnotationTransparentProxyConfig] != pod.Annotations[api.AnnotationTransparentProxyConfig] {
		t.Errorf("the pod's configuration is now %s; it was admitted with %s",
			got.Annotations[api.AnnotationTransparentProxyConfig], pod.Annotations[api.AnnotationTransparentProxyConfig])
	}

	// The pod as it is now: should the update have gone through, the container would be added.
	pod = &got
	pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
		EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox",
			SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](5678), RunAsNonRoot: ptr.To(true)}}})
	err = e.Client.SubResource("ephemeralcontainers").Update(ctx, pod)
	want = protection.Denied(pod.Name, "ephemeral container debugger"+protection.AsSidecarUID+protection.EphemeralAccepted)
	if err == nil || err.Error() != want {
		t.Errorf("adding an ephemeral container as UID 5678: %v\nwant: %s", err, want)
	}
}

// createGated creates, through the API server, a pod held by a scheduling gate, which never runs
// and is deleted when the test ends, and returns it as stored.
func (e *nodeEnv) createGated(ctx context.Context, t *testing.T, namespace, name string) (*corev1.Pod, error) {
	pod := protection.GatedPod(namespace, name)
	if err := e.Client.Create(ctx, pod); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if err := e.Client.Delete(context.WithoutCancel(ctx), pod); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting %s: %v", name, err)
		}
	})
	return pod, nil
}

// isInjected says whether the injector injected the pod the API server stored.
func isInjected(pod *corev1.Pod) bool {
	return pod.Annotations[api.AnnotationSidecarInjected] == "true" && podkit.Container(pod, inject.SidecarName) != nil
}

// injectorPod is the injector's one pod, which the API server calls.
func (e *nodeEnv) injectorPod(ctx context.Context, t *testing.T) *corev1.Pod {
	t.Helper()
	pods, err := e.Clientset.CoreV1().Pods(nodechart.ReleaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=injector"})
	if err != nil {
		t.Fatal(err)
	}
	var serving []*corev1.Pod
	for i, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			serving = append(serving, &pods.Items[i])
		}
	}
	if len(serving) != 1 {
		t.Fatalf("the injector has %d Ready pods (%v); want one", len(serving), names(pods.Items))
	}
	return serving[0]
}

// port is the number of the container port of the pod's first container so named.
func port(t *testing.T, pod *corev1.Pod, name string) string {
	t.Helper()
	for _, p := range pod.Spec.Containers[0].Ports {
		if p.Name == name {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	t.Fatalf("%s has no port %s", pod.Name, name)
	return ""
}

// attacker is a pod of a namespace that is not meshed, Ready: any pod on the cluster network,
// whose address the injector sees.
func (e *nodeEnv) attacker(ctx context.Context, t *testing.T) *corev1.Pod {
	t.Helper()
	if _, err := e.Clientset.CoreV1().Namespaces().Get(ctx, hostileNS, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := e.CreateNamespace(ctx, hostileNS, nil); err != nil {
			t.Fatal(err)
		}
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "attacker", Namespace: hostileNS}, Spec: podSpec(e.app(ctx, t))}
	if err := e.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Client.Delete(context.WithoutCancel(ctx), pod, client.GracePeriodSeconds(0)); err != nil {
			t.Errorf("deleting the attacker: %v", err)
		}
	})
	return e.waitReady(ctx, t, hostileNS, pod.Name)
}

package security

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/binaries"
	testcluster "github.com/meshinit/meshinit/test/cluster"
	"github.com/meshinit/meshinit/test/hostile"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/scrape"
	"github.com/meshinit/meshinit/webhook/inject"
)

// TestStallThroughAPIServer is issue 15's stall: a pod on the cluster network (a client from
// 127.0.0.2; a pod has an address of its own) keeps 64 TLS connections to the injector, each with
// 256 KiB of an admission request sent and then silence, opening another whenever the injector
// ends one for its slowness; meanwhile pods are created through the API server in a meshed
// namespace. Every one must be stored with its sidecar, under failurePolicy Fail and Ignore alike:
// one client cannot take what the API server's requests need. Before the fix, the flood held the
// bytes all bodies shared for 30 s: every create failed under Fail, and every pod was admitted
// without its sidecar under Ignore.
func TestStallThroughAPIServer(t *testing.T) {
	ctx := t.Context()
	c := testcluster.New(ctx, t)
	inj := c.RunInjector(ctx, t, binaries.Build(t, "injector"), testcluster.InjectorOptions{Args: []string{testcluster.NoDrain}})
	for _, policy := range []string{"Fail", "Ignore"} {
		t.Run(policy, func(t *testing.T) {
			c.Register(ctx, t, inj.URL, map[string]any{"webhook": map[string]any{"failurePolicy": policy}})
			ns := meshedNamespace(ctx, t, c.Client, "stall-"+strings.ToLower(policy))
			flood := hostile.Flood{Addr: inj.Addr, From: "127.0.0.2", Conns: 64, Send: 256 << 10}.Start(t)
			out := createPods(ctx, c.Client, ns, 10)
			answers, refused := flood.Outcome()
			flood.Stop()
			t.Logf("figures: stall, failurePolicy %s: %s; the flood's connections refused at once %d, its requests answered %v",
				policy, out, refused, answers)
			if len(out.failed) > 0 || len(out.uninjected) > 0 {
				t.Errorf("while one client held its connections: %s", out)
			}
		})
	}
}

// meshedNamespace creates a namespace labelled for injection, and waits until the webhook injects
// its pods.
func meshedNamespace(ctx context.Context, t *testing.T, c client.Client, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{api.LabelSidecarInjection: "enabled"}}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "pods of "+name+" are injected", func() (bool, error) {
		pod := appPod(nil)
		pod.Namespace = name
		return c.Create(ctx, pod, client.DryRunAll) == nil && isInjected(pod), nil
	})
	return name
}

// isInjected says whether the webhook injected the pod the API server returned.
func isInjected(pod *corev1.Pod) bool {
	isSidecar := func(c corev1.Container) bool { return c.Name == inject.SidecarName }
	return pod.Annotations[api.AnnotationSidecarInjected] == "true" &&
		(slices.ContainsFunc(pod.Spec.InitContainers, isSidecar) || slices.ContainsFunc(pod.Spec.Containers, isSidecar))
}

// creates is what creating pods came to.
type creates struct {
	injected   int
	uninjected []string
	// failed counts the errors by message.
	failed map[string]int
}

func (c creates) String() string {
	s := fmt.Sprintf("%d pods stored injected, %d without their sidecar, %d creates failed", c.injected, len(c.uninjected), c.count())
	for _, msg := range slices.Sorted(maps.Keys(c.failed)) {
		s += fmt.Sprintf("\n  %d× %s", c.failed[msg], msg)
	}
	return s
}

func (c creates) count() (n int) {
	for _, k := range c.failed {
		n += k
	}
	return n
}

// uuid is a request's UID, which failures are counted without.
var uuid = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// createPods creates n pods in namespace, one after the other, through the API server.
func createPods(ctx context.Context, c client.Client, namespace string, n int) creates {
	out := creates{failed: map[string]int{}}
	for i := range n {
		pod := appPod(nil)
		pod.Namespace, pod.Name = namespace, fmt.Sprintf("app-%d", i)
		switch err := c.Create(ctx, pod); {
		case err != nil:
			out.failed[uuid.ReplaceAllString(strings.ReplaceAll(err.Error(), pod.Name, "app-N"), "UID")]++
		case isInjected(pod):
			out.injected++
		default:
			out.uninjected = append(out.uninjected, pod.Name)
		}
	}
	return out
}

// tryAgain is how the API server shows a creator the injector's refusal during a flood.
const tryAgain = `admission webhook "namespace.sidecar-injector.meshinit.io" denied the request: the injector is already reading 16 MiB of admission requests, as much as it holds at once; try again`

// TestFloodThroughAPIServer: when clients at several addresses (pods of their own) hold all the
// bytes the injector reads at once, pods created through the API server are refused with the
// injector's "try again", which the API server shows because the refusal carries the request's
// UID (without it: "received invalid webhook response"), under failurePolicy Ignore too, where a
// webhook that fails admits the pod without its sidecar; once the flood ends, pods are injected.
// Then, with clients whose requests the injector ends after a second, so that the bytes come and
// go, every create is either injected or refused so.
func TestFloodThroughAPIServer(t *testing.T) {
	ctx := t.Context()
	c := testcluster.New(ctx, t)
	binary := binaries.Build(t, "injector")

	t.Run("held", func(t *testing.T) {
		inj := c.RunInjector(ctx, t, binary, testcluster.InjectorOptions{Metrics: true,
			Args: []string{testcluster.NoDrain, "--admission-body-timeout=1h"}})
		c.Register(ctx, t, inj.URL, nil)
		ns := meshedNamespace(ctx, t, c.Client, "flood-held")
		// Each of two addresses holds its share, 8 MiB, with two requests whose bodies never come:
		// the 16 MiB the injector reads at once are held.
		var floods []*hostile.Running
		for _, from := range []string{"127.0.0.2", "127.0.0.3"} {
			for _, declared := range []int{7 << 20, 1 << 20} {
				floods = append(floods, hostile.Flood{Addr: inj.Addr, From: from, Conns: 1, Declared: declared, Send: 512}.Start(t))
			}
		}
		poll.Until(t, "the flood holds 16 MiB", func() (bool, error) { return bodyBytes(t, inj.MetricsURL) == 16<<20, nil })
		for _, policy := range []string{"Fail", "Ignore"} {
			c.Register(ctx, t, inj.URL, map[string]any{"webhook": map[string]any{"failurePolicy": policy}})
			out := createPods(ctx, c.Client, ns, 5)
			t.Logf("figures: flood holding the injector's 16 MiB, failurePolicy %s: %s", policy, out)
			if out.injected > 0 || len(out.uninjected) > 0 || out.failed[tryAgain] != 5 {
				t.Errorf("failurePolicy %s: %s; want every create refused with\n%s", policy, out, tryAgain)
			}
			deleteAll(ctx, t, c.Client, ns)
		}
		for _, f := range floods {
			f.Stop()
		}
		poll.Until(t, "the flood's bytes are given back", func() (bool, error) { return bodyBytes(t, inj.MetricsURL) == 0, nil })
		if out := createPods(ctx, c.Client, ns, 5); out.injected != 5 {
			t.Errorf("after the flood: %s", out)
		}
	})

	t.Run("churning", func(t *testing.T) {
		inj := c.RunInjector(ctx, t, binary, testcluster.InjectorOptions{Args: []string{testcluster.NoDrain, "--admission-body-timeout=1s"}})
		c.Register(ctx, t, inj.URL, map[string]any{"webhook": map[string]any{"failurePolicy": "Ignore"}})
		ns := meshedNamespace(ctx, t, c.Client, "flood-churning")
		// Each request takes its 512 KiB as its headers arrive; the addresses' shares together are
		// twice what the injector holds at once.
		for _, from := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
			hostile.Flood{Addr: inj.Addr, From: from, Conns: 16, Declared: 512 << 10, Send: 512}.Start(t)
		}
		out := createPods(ctx, c.Client, ns, 200)
		t.Logf("figures: flood from 4 addresses, bodies ended after 1s, failurePolicy Ignore: %s", out)
		delete(out.failed, tryAgain)
		if len(out.uninjected) > 0 || len(out.failed) > 0 {
			t.Errorf("creates neither injected nor refused with %q: %s", tryAgain, out)
		}
	})
}

// bodyBytes is the injector's sidecar_injector_request_body_bytes.
func bodyBytes(t *testing.T, metricsURL string) float64 {
	t.Helper()
	return scrape.Get(t, metricsURL).Gauge(t, "sidecar_injector_request_body_bytes")
}

// deleteAll deletes the pods of namespace.
func deleteAll(ctx context.Context, t *testing.T, c client.Client, namespace string) {
	t.Helper()
	if err := c.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace(namespace)); err != nil {
		t.Fatal(err)
	}
}

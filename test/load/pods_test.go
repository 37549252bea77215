package load

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/webhook/inject"
)

// meshedNamespaces creates n namespaces labelled for injection, prefix-0 to prefix-<n-1>.
func meshedNamespaces(ctx context.Context, t testing.TB, c client.Client, prefix string, n int) []string {
	t.Helper()
	var names []string
	for i := range n {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i),
			Labels: map[string]string{api.LabelSidecarInjection: "enabled"}}}
		if err := c.Create(ctx, ns); err != nil {
			t.Fatal(err)
		}
		names = append(names, ns.Name)
	}
	return names
}

// app is a one-container pod.
func app(namespace, name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}}
}

// injected says whether the webhook injected the pod.
func injected(pod *corev1.Pod) bool {
	isSidecar := func(c corev1.Container) bool { return c.Name == inject.SidecarName }
	return pod.Annotations[api.AnnotationSidecarInjected] == "true" &&
		(slices.ContainsFunc(pod.Spec.InitContainers, isSidecar) || slices.ContainsFunc(pod.Spec.Containers, isSidecar))
}

// waitForInjection waits until the API server calls the webhook for pods of namespace and gets
// them injected: a registration takes effect once the API server's informer has it. It asks
// with dry-run creates, which leave nothing behind.
func waitForInjection(ctx context.Context, t testing.TB, c client.Client, namespace string) {
	t.Helper()
	poll.Until(t, "pods of "+namespace+" are injected after the webhook's registration", func() (bool, error) {
		pod := app(namespace, "probe")
		return c.Create(ctx, pod, client.DryRunAll) == nil && injected(pod), nil
	})
}

// workload is pods created through the API server by concurrent clients.
type workload struct {
	// namespaces get the pods in turn; pod i is pod-<i> in namespaces[i%len(namespaces)].
	namespaces  []string
	concurrency int
	// pods is how many; 0 for as many as there is time for until stop is closed.
	pods int
	stop <-chan struct{}
	// progress, if not nil, hears of each create done, failed or not, with the count so far.
	progress func(done int)
}

// outcome is what a workload's creates came to.
type outcome struct {
	// created are the pods the API server admitted.
	created []client.ObjectKey
	// failures counts the errors by message, with the pod's name taken out.
	failures  map[string]int
	latencies []time.Duration
	elapsed   time.Duration
}

// unthrottled is a client of the API server without client-side rate limit: the API server and
// the webhook are what is measured.
func unthrottled(t testing.TB, cfg *rest.Config) client.Client {
	t.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = -1
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// run creates the pods with c. Failures are counted, not reported, so that the test decides; it
// may run beside the test's goroutine.
func (w workload) run(ctx context.Context, c client.Client) *outcome {
	out := &outcome{failures: map[string]int{}}
	var mu sync.Mutex
	var next, done atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range w.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if w.pods > 0 && i >= w.pods {
					return
				}
				if w.stop != nil {
					select {
					case <-w.stop:
						return
					default:
					}
				}
				name := fmt.Sprintf("pod-%05d", i)
				pod := app(w.namespaces[i%len(w.namespaces)], name)
				began := time.Now()
				err := c.Create(ctx, pod)
				took := time.Since(began)
				mu.Lock()
				out.latencies = append(out.latencies, took)
				if err != nil {
					out.failures[strings.ReplaceAll(err.Error(), name, "pod-N")]++
				} else {
					out.created = append(out.created, client.ObjectKeyFromObject(pod))
				}
				mu.Unlock()
				if n := int(done.Add(1)); w.progress != nil {
					w.progress(n)
				}
			}
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	return out
}

// failed is the number of creates that failed.
func (o *outcome) failed() int {
	n := 0
	for _, count := range o.failures {
		n += count
	}
	return n
}

// rate is creates per second, failed ones included.
func (o *outcome) rate() float64 {
	return float64(len(o.latencies)) / o.elapsed.Seconds()
}

// latency is the q-quantile of the creates' latencies, as the client saw them.
func (o *outcome) latency(q float64) time.Duration {
	if len(o.latencies) == 0 {
		return 0
	}
	sorted := slices.Sorted(slices.Values(o.latencies))
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// String sums the outcome up, failures by message.
func (o *outcome) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d creates in %s (%.0f pods/s; client-side latency p50 %s, p99 %s): %d admitted, %d failed",
		len(o.latencies), o.elapsed.Round(time.Millisecond), o.rate(), o.latency(0.5).Round(10*time.Microsecond),
		o.latency(0.99).Round(10*time.Microsecond), len(o.created), o.failed())
	for _, msg := range slices.Sorted(maps.Keys(o.failures)) {
		fmt.Fprintf(&b, "\n  %d× %s", o.failures[msg], msg)
	}
	return b.String()
}

// storedPods are the created pods as the API server stored them.
type storedPods struct {
	injected int
	// uninjected and missing name the pods admitted without injection, and those not found.
	uninjected, missing []string
}

// stored reads back every pod the outcome says was created.
func stored(ctx context.Context, t testing.TB, c client.Client, namespaces []string, created []client.ObjectKey) storedPods {
	t.Helper()
	pods := map[client.ObjectKey]*corev1.Pod{}
	for _, ns := range namespaces {
		var list corev1.PodList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for i := range list.Items {
			pods[client.ObjectKeyFromObject(&list.Items[i])] = &list.Items[i]
		}
	}
	var s storedPods
	for _, key := range created {
		switch pod, ok := pods[key]; {
		case !ok:
			s.missing = append(s.missing, key.String())
		case injected(pod):
			s.injected++
		default:
			s.uninjected = append(s.uninjected, key.String())
		}
	}
	sort.Strings(s.uninjected)
	sort.Strings(s.missing)
	return s
}

package perf

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/injectorenv"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/webhook/inject"
)

// podsPerBatch pods are created at concurrency creators, in each of the two namespaces in turn.
const (
	podsPerBatch = 40
	creators     = 8
)

// BenchmarkPodCreation creates pods through the real API server at a fixed concurrency, in turn:
// plain pods where the webhook is not called (the injector's own namespace, which its
// namespaceSelector leaves out), the same pods in a labelled namespace where the webhook injects
// them, and, where the webhook is not called, pods already injected as the webhook would, which
// are as heavy to store as the webhook's. It reports the three rates and the webhook's against
// each of the other two.
func BenchmarkPodCreation(b *testing.B) {
	env, err := injectorenv.Start(context.Background(), injectorenv.Options{})
	if err != nil {
		prereq.Missing(b, "the injector's test environment: %v", err)
	}
	defer env.Stop()
	ctx := context.Background()
	meshed := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshed", Labels: map[string]string{api.LabelSidecarInjection: "enabled"}}}
	if err := env.Client.Create(ctx, meshed); err != nil {
		b.Fatal(err)
	}
	injector := &inject.Injector{Config: env.Config, NativeSidecars: true}
	res, err := injector.Inject(plainPod(env.Config.SystemNamespace), "meshed", meshed.Labels)
	if err != nil {
		b.Fatal(err)
	}
	var plain, injected, with time.Duration
	n := 0
	for b.Loop() {
		plain += createPods(b, env.Client, func() *corev1.Pod { return plainPod(env.Config.SystemNamespace) })
		with += createPods(b, env.Client, func() *corev1.Pod { return plainPod("meshed") })
		injected += createPods(b, env.Client, func() *corev1.Pod { return res.Pod.DeepCopy() })
		n += podsPerBatch
	}
	b.ReportMetric(float64(n)/plain.Seconds(), "pods/s-plain-no-webhook")
	b.ReportMetric(float64(n)/injected.Seconds(), "pods/s-injected-no-webhook")
	b.ReportMetric(float64(n)/with.Seconds(), "pods/s-webhook")
	b.ReportMetric(plain.Seconds()/with.Seconds(), "x-plain")
	b.ReportMetric(injected.Seconds()/with.Seconds(), "x-same-pods")
}

func plainPod(ns string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}}}
}

func createPods(b *testing.B, c client.Client, newPod func() *corev1.Pod) time.Duration {
	var wg sync.WaitGroup
	work := make(chan int, podsPerBatch)
	for i := range podsPerBatch {
		work <- i
	}
	close(work)
	start := time.Now()
	for range creators {
		wg.Go(func() {
			for range work {
				p := newPod()
				if err := c.Create(context.Background(), p); err != nil {
					b.Error(fmt.Errorf("creating a pod in %s: %w", p.Namespace, err))
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

package perf

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/node"
)

// BenchmarkNodeStart starts the one-node cluster of test/node (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, the kubelet), runs one pod of the sandbox
// image on it, and stops it, host cleanup included. It reports the time to the node Ready, from a
// pod's creation to its Ready (scheduled, sandbox and container started), and the stop; and, as
// the reference measured side by side, the start of a bare control plane (test/kubeenv: etcd and
// kube-apiserver through envtest), which every test against the API server pays.
func BenchmarkNodeStart(b *testing.B) {
	node.Prerequisites(b)
	ctx := context.Background()
	var ready, podReady, stop, bare time.Duration
	n := 0
	for b.Loop() {
		r, p, s := startNodeAndPod(ctx, b)
		ready, podReady, stop = ready+r, podReady+p, stop+s
		bare += startControlPlane(b)
		n++
	}
	b.ReportMetric(ready.Seconds()/float64(n), "s-node-ready")
	b.ReportMetric(podReady.Seconds()/float64(n), "s-pod-ready")
	b.ReportMetric(stop.Seconds()/float64(n), "s-stop")
	b.ReportMetric(bare.Seconds()/float64(n), "s-control-plane")
	b.ReportMetric(ready.Seconds()/bare.Seconds(), "x-control-plane")
}

// startControlPlane times the start of a bare control plane, and stops it.
func startControlPlane(b *testing.B) time.Duration {
	env, err := kubeenv.Environment()
	if err != nil {
		b.Fatal(err)
	}
	begin := time.Now()
	_, err = env.Start()
	took := time.Since(begin)
	if stopErr := kubeenv.Stop(env); err == nil {
		err = stopErr
	}
	if err != nil {
		b.Fatal(err)
	}
	return took
}

// startNodeAndPod is one iteration: a node started, a pod Ready on it, the node stopped (also when
// the iteration fails).
func startNodeAndPod(ctx context.Context, b *testing.B) (ready, podReady, stop time.Duration) {
	nd, err := node.New(ctx, node.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer nd.Stop()
	ready = nd.Started[node.StepReady]
	if _, err := nd.CreateNamespace(ctx, "bench", nil); err != nil {
		b.Fatal(err)
	}
	begin := time.Now()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "bench"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "pause", Image: node.PauseImage, ImagePullPolicy: corev1.PullNever}}}}
	if err := nd.Client.Create(ctx, pod); err != nil {
		b.Fatal(err)
	}
	if _, err := nd.WaitPodReady(ctx, "bench", "p"); err != nil {
		b.Fatal(err)
	}
	podReady = time.Since(begin)
	begin = time.Now()
	if err := nd.Stop(); err != nil {
		b.Fatal(err)
	}
	return ready, podReady, time.Since(begin)
}

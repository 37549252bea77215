package perf

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/ptr"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshinit/meshinit/test/node"
	"github.com/meshinit/meshinit/test/nodechart"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/webhook/inject"
)

// BenchmarkInjectedPodStartup times, on the one-node cluster of test/node with meshinit's chart
// installed (the injector a pod, the kuma-dp stand-in as kuma-sidecar), the same pod (echo, no
// probe of its own) from its creation to Ready as a client watching it sees it: in a namespace the
// injector leaves alone, then injected, in turn in each iteration. Where the injected pod's extra
// time goes comes from containerd's timestamps of its containers (CRI, in nanoseconds: a pod's
// status has them to the second):
//
//	ms-first-container  from the pod's creation to its first container's creation (admission,
//	                    the webhook's included, scheduling, the sandbox), each kind of pod
//	ms-kuma-init-start  kuma-init's container, from its creation to its start (containerd, runc)
//	ms-kuma-init-run    kuma-init's process, from its start to its exit
//	ms-kuma-init-seen   from kuma-init's exit to the next container's creation: the kubelet
//	                    noticing the exit
//	ms-sidecar-start    kuma-sidecar, from its creation to the app container's creation: its start
//	                    and the kubelet's wait for its startup probe
//	ms-ready-after-app  from the app's container started to the pod Ready, each kind of pod
func BenchmarkInjectedPodStartup(b *testing.B) {
	node.Prerequisites(b)
	repo := prereq.RepoRoot(b)
	for _, name := range nodechart.Images {
		prereq.Image(b, repo, name)
	}
	// envtest logs through controller-runtime: without a logger, it says so with a stack trace.
	ctrllog.SetLogger(logr.Discard())
	ctx := context.Background()
	n, err := node.New(ctx, node.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Stop()
	c := nodechart.New(n, repo)
	c.Chart(ctx, b, nil)
	c.MeshedNamespace(ctx, b, "meshed")
	if _, err := n.CreateNamespace(ctx, "plain", nil); err != nil {
		b.Fatal(err)
	}
	echo := c.Image(ctx, b, "echo")
	var sum struct {
		plain, injected                       startup
		initStart, initRun, initSeen, sidecar time.Duration
	}
	i := 0
	for b.Loop() {
		i++
		p := startPod(ctx, b, c, "plain", fmt.Sprintf("p%d", i), echo)
		q := startPod(ctx, b, c, "meshed", fmt.Sprintf("p%d", i), echo)
		ki, side, app := q.containers[inject.InitName], q.containers[inject.SidecarName], q.containers["app"]
		if ki == nil || side == nil {
			b.Fatalf("the pod in namespace meshed was not injected: %v", q.containers)
		}
		sum.plain.add(p.startup())
		sum.injected.add(q.startup())
		sum.initStart += nanos(ki.StartedAt - ki.CreatedAt)
		sum.initRun += nanos(ki.FinishedAt - ki.StartedAt)
		sum.initSeen += nanos(side.CreatedAt - ki.FinishedAt)
		sum.sidecar += nanos(app.CreatedAt - side.CreatedAt)
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(i) }
	b.ReportMetric(ms(sum.plain.ready), "ms-ready-plain")
	b.ReportMetric(ms(sum.injected.ready), "ms-ready-injected")
	b.ReportMetric(ms(sum.injected.ready-sum.plain.ready), "ms-added")
	b.ReportMetric(ms(sum.plain.firstContainer), "ms-first-container-plain")
	b.ReportMetric(ms(sum.injected.firstContainer), "ms-first-container-injected")
	b.ReportMetric(ms(sum.initStart), "ms-kuma-init-start")
	b.ReportMetric(ms(sum.initRun), "ms-kuma-init-run")
	b.ReportMetric(ms(sum.initSeen), "ms-kuma-init-seen")
	b.ReportMetric(ms(sum.sidecar), "ms-sidecar-start")
	b.ReportMetric(ms(sum.plain.afterApp), "ms-ready-after-app-plain")
	b.ReportMetric(ms(sum.injected.afterApp), "ms-ready-after-app-injected")
}

func nanos(n int64) time.Duration { return time.Duration(n) }

// startup is how a pod's start went: to Ready, to its first container's creation, and from its
// app container's start to Ready.
type startup struct{ ready, firstContainer, afterApp time.Duration }

func (s *startup) add(o startup) {
	s.ready, s.firstContainer, s.afterApp = s.ready+o.ready, s.firstContainer+o.firstContainer, s.afterApp+o.afterApp
}

// started is a pod that started: when it was created, how long it took to be Ready, and
// containerd's status of each of its containers, by name.
type started struct {
	created    time.Time
	ready      time.Duration
	containers map[string]*cri.ContainerStatus
}

// startPod creates a pod of echo in namespace, waits for it to be Ready, reads its containers'
// timestamps, and deletes it, waiting until it is gone so that the next pod starts on a quiet
// node.
func startPod(ctx context.Context, b *testing.B, c *nodechart.Cluster, namespace, name, image string) started {
	b.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Spec: corev1.PodSpec{
		Containers:                    []corev1.Container{{Name: "app", Image: image, Args: []string{"--http=:8080", "--https=", "--tcp=", "--grpc="}}},
		TerminationGracePeriodSeconds: ptr.To[int64](1),
	}}
	s := started{created: time.Now()}
	if err := c.Client.Create(ctx, pod); err != nil {
		b.Fatal(err)
	}
	ready, err := c.WaitPodReady(ctx, namespace, name)
	if err != nil {
		b.Fatal(err)
	}
	s.ready = time.Since(s.created)
	if s.containers, err = containerStatuses(ctx, c.Node, ready); err != nil {
		b.Fatal(err)
	}
	if err := c.Client.Delete(ctx, ready); err != nil {
		b.Fatal(err)
	}
	if _, err := nodechart.WaitFor(ctx, c.List("pods", namespace, ""), nil, func(pods []*corev1.Pod) bool { return len(pods) == 0 }); err != nil {
		b.Fatalf("waiting for %s/%s to go: %v", namespace, name, err)
	}
	return s
}

// startup is the pod's startup, from its timestamps.
func (s started) startup() startup {
	first := int64(0)
	for _, c := range s.containers {
		if first == 0 || c.CreatedAt < first {
			first = c.CreatedAt
		}
	}
	readyAt := s.created.Add(s.ready)
	return startup{ready: s.ready, firstContainer: time.Unix(0, first).Sub(s.created),
		afterApp: readyAt.Sub(time.Unix(0, s.containers["app"].StartedAt))}
}

// containerStatuses asks containerd (CRI) for the status of each container of a pod, by name.
func containerStatuses(ctx context.Context, n *node.Node, pod *corev1.Pod) (map[string]*cri.ContainerStatus, error) {
	client, err := n.CRI(ctx)
	if err != nil {
		return nil, err
	}
	list, err := client.ListContainers(ctx, &cri.ListContainersRequest{Filter: &cri.ContainerFilter{
		LabelSelector: map[string]string{"io.kubernetes.pod.uid": string(pod.UID)}}})
	if err != nil {
		return nil, err
	}
	out := map[string]*cri.ContainerStatus{}
	for _, ctr := range list.Containers {
		st, err := client.ContainerStatus(ctx, &cri.ContainerStatusRequest{ContainerId: ctr.Id})
		if err != nil {
			return nil, err
		}
		out[ctr.Metadata.Name] = st.Status
	}
	return out, nil
}

package node_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/test/node"
	"github.com/meshinit/meshinit/test/node/hoststate"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/prereq"
)

// toolImage is the test's workload image, built from testdata/tool.
const toolImage = "meshinit.test/tool:test"

// TestNode starts a node, runs a pod, a Job and a Deployment on it from an image built here, enters
// a pod's network namespace, restarts containerd and the kubelet under a running pod, and shows that
// after the node stops the host is as it was: sysctls, mounts, fixed paths, cgroups, links, iptables
// rules and processes.
func TestNode(t *testing.T) {
	node.Prerequisites(t)
	ctx := t.Context()
	repo := prereq.RepoRoot(t)
	lock, err := node.AcquireLock(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	// What a crashed run of another test left is not this test's to see.
	if err := lock.Recover(t.Logf); err != nil {
		t.Fatal(err)
	}
	before := takeHost(t)
	image := buildTool(t, repo)

	n := node.Start(ctx, t, node.Options{Lock: lock})
	if err := n.ImportImage(ctx, image, toolImage); err != nil {
		t.Fatal(err)
	}
	if _, err := n.CreateNamespace(ctx, "work", nil); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	t.Run("pod from a local image is Ready", func(t *testing.T) {
		// No nodeName: the scheduler places it. The readiness probe is an exec, through the kubelet
		// and containerd.
		p := toolPod("sleeper", "sleep")
		p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/tool", "echo", "ready"}}},
			PeriodSeconds: 1}
		if err := n.Client.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		var err error
		if pod, err = n.WaitPodReady(ctx, "work", "sleeper"); err != nil {
			t.Fatal(err)
		}
		if ip := net.ParseIP(pod.Status.PodIP); ip == nil || !node.Subnet.Contains(ip) {
			t.Errorf("pod IP %q, want one in %s", pod.Status.PodIP, node.Subnet.String())
		}
	})
	if pod == nil {
		t.FailNow()
	}
	t.Run("the pod's network namespace", func(t *testing.T) {
		out, err := n.Nsenter(ctx, pod, "ip", "-o", "-4", "addr", "show", "dev", "eth0")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), " "+pod.Status.PodIP+"/") {
			t.Errorf("eth0 of the pod's namespace: %s; want %s", out, pod.Status.PodIP)
		}
		// The pod reaches the API server as an in-cluster client does: at the kubernetes Service,
		// trusting the namespace's kube-root-ca.crt.
		var svc corev1.Service
		if err := n.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kubernetes"}, &svc); err != nil {
			t.Fatal(err)
		}
		var ca corev1.ConfigMap
		if err := n.Client.Get(ctx, client.ObjectKey{Namespace: "work", Name: "kube-root-ca.crt"}, &ca); err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM([]byte(ca.Data["ca.crt"])) {
			t.Fatalf("kube-root-ca.crt holds no certificate: %q", ca.Data)
		}
		addr := net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
		if err := n.InPodNetNS(ctx, pod, func() error {
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, &tls.Config{RootCAs: roots})
			if err == nil {
				c.Close()
			}
			return err
		}); err != nil {
			t.Errorf("from the pod to the API server at the kubernetes Service %s: %v", addr, err)
		}
	})
	t.Run("docker-archive import", func(t *testing.T) {
		archive := filepath.Join(t.TempDir(), "tool.tar")
		if err := dockerArchive(image, "meshinit.test/tool:archive", archive); err != nil {
			t.Fatal(err)
		}
		if err := n.ImportImage(ctx, archive, ""); err != nil {
			t.Fatal(err)
		}
		names, err := n.Images(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{node.PauseImage, toolImage, "meshinit.test/tool:archive"} {
			if !slices.Contains(names, want) {
				t.Errorf("the kubelet's images %v lack %s", names, want)
			}
		}
	})
	t.Run("exec", func(t *testing.T) {
		out, _, code, err := n.ExecSync(ctx, pod, "tool", "/tool", "echo", "hello")
		if err != nil || code != 0 || string(out) != "hello\n" {
			t.Errorf("exec: %q, exit %d, %v", out, code, err)
		}
	})
	t.Run("Job", func(t *testing.T) {
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: "work"},
			Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0), Template: corev1.PodTemplateSpec{Spec: toolPod("", "exit", "0").Spec}}}
		job.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		if err := n.Client.Create(ctx, job); err != nil {
			t.Fatal(err)
		}
		if _, err := n.WaitJobComplete(ctx, "work", "once"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Deployment", func(t *testing.T) {
		labels := map[string]string{"app": "web"}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "work"},
			Spec: appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: toolPod("", "sleep").Spec}}}
		if err := n.Client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := n.WaitDeploymentAvailable(ctx, "work", "web"); err != nil {
			t.Fatal(err)
		}
		// The controller manager gives its Service endpoints: the API server calls a webhook
		// Service there (--enable-aggregator-routing), with no kube-proxy.
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "work"},
			Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 443, TargetPort: intstr.FromInt32(8443)}}}}
		if err := n.Client.Create(ctx, svc); err != nil {
			t.Fatal(err)
		}
		// Listed again and again rather than watched: the API server may end a watch at any time,
		// and an ended watch says nothing about the endpoints.
		poll.Until(t, "the Service has a ready endpoint", func() (bool, error) {
			slices, err := n.Clientset.DiscoveryV1().EndpointSlices("work").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
			if err != nil {
				return false, err
			}
			for _, es := range slices.Items {
				if len(es.Endpoints) == 1 && ptr.Deref(es.Endpoints[0].Conditions.Ready, false) {
					if ip := net.ParseIP(es.Endpoints[0].Addresses[0]); !node.Subnet.Contains(ip) {
						t.Errorf("endpoint %s, want a pod address in %s", ip, node.Subnet.String())
					}
					return true, nil
				}
			}
			return false, nil
		})
	})
	t.Run("containerd restarted under a running pod", func(t *testing.T) {
		id := pod.Status.ContainerStatuses[0].ContainerID
		if err := n.RestartContainerd(ctx); err != nil {
			t.Fatal(err)
		}
		samePod(ctx, t, n, id)
	})
	t.Run("kubelet restarted under a running pod", func(t *testing.T) {
		id := pod.Status.ContainerStatuses[0].ContainerID
		if err := n.RestartKubelet(ctx); err != nil {
			t.Fatal(err)
		}
		samePod(ctx, t, n, id)
	})

	var ports []string
	t.Run("the running node shows in the record of the host", func(t *testing.T) {
		ports = bridgePorts(t)
		// Else the comparison after it stops would prove nothing.
		during := takeHost(t)
		t.Logf("the running node's changes to the host:\n%s", hoststate.Changes(before, during))
		for _, key := range []string{"sysctl kernel/panic", "link " + node.Name, "cgroup /sys/fs/cgroup/memory",
			"path /var/lib/kubelet", "path /var/log/containers"} {
			if before[key] == during[key] {
				t.Errorf("%s is the same with the node running: %q", key, during[key])
			}
		}
	})

	if t.Failed() {
		n.DumpLogs(t.Logf)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	diffHost(t, before, takeHost(t))
	portsGone(t, ports)
}

// samePod checks that the sleeper pod still runs its first container, Ready, and answers an exec.
func samePod(ctx context.Context, t *testing.T, n *node.Node, id string) {
	t.Helper()
	p, err := n.WaitPodReady(ctx, "work", "sleeper")
	if err != nil {
		t.Fatal(err)
	}
	if s := p.Status.ContainerStatuses[0]; s.ContainerID != id || s.RestartCount != 0 {
		t.Errorf("container %s, %d restarts; want the first one, %s, never restarted", s.ContainerID, s.RestartCount, id)
	}
	if out, _, _, err := n.ExecSync(ctx, p, "tool", "/tool", "echo", "still"); err != nil || string(out) != "still\n" {
		t.Errorf("exec: %q, %v", out, err)
	}
}

func toolPod(name string, args ...string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "work"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{Name: "tool", Image: toolImage, ImagePullPolicy: corev1.PullNever,
				Command: append([]string{"/tool"}, args...)}},
		}}
}

// buildTool builds testdata/tool, static, into an OCI layout of one image.
func buildTool(t *testing.T, repo string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, "tool"), "./test/node/testdata/tool")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the tool: %v\n%s", err, out)
	}
	layout := filepath.Join(dir, "layout")
	if err := node.WriteImage(layout, filepath.Join(dir, "tool"), "/tool"); err != nil {
		t.Fatal(err)
	}
	return layout
}

// dockerArchive writes the one image of an OCI layout as a docker-archive (`docker save`) named ref.
func dockerArchive(layoutDir, ref, path string) error {
	index, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		return err
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		return err
	}
	img, err := index.Image(manifest.Manifests[0].Digest)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}

// crashChild is set in the environment of the child process that starts a node and is killed.
const crashChild = "MESHINIT_NODE_CRASH_CHILD"

// TestCrashedRunIsCleanedUp kills a process in the middle of running a node (SIGKILL: no cleanup of
// any kind), kills containerd too, and shows that the next node cleans up everything the first left
// (its processes, pods, mounts, cgroups, bridge, sysctls and files) before it starts, and that once
// it stops the host is as it was before either.
func TestCrashedRunIsCleanedUp(t *testing.T) {
	if os.Getenv(crashChild) != "" {
		runCrashChild(t)
		return
	}
	node.Prerequisites(t)
	ctx := t.Context()
	lock, err := node.AcquireLock(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if err := lock.Recover(t.Logf); err != nil {
		t.Fatal(err)
	}
	before := takeHost(t)
	lock.Release()

	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashedRunIsCleanedUp$", "-test.v")
	child.Env = append(os.Environ(), crashChild+"=1")
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = child.Stdout
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	// The child says when its pod is Ready, and where its node's root is.
	var root string
	var said []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		said = append(said, sc.Text())
		if r, ok := strings.CutPrefix(sc.Text(), "CRASH-READY "); ok {
			root = r
			break
		}
	}
	if root == "" {
		_ = child.Wait()
		t.Fatalf("the child did not start its node:\n%s", strings.Join(said, "\n"))
	}
	_ = child.Process.Kill()
	_ = child.Wait()
	leftovers := processesNaming(root)
	if len(leftovers) == 0 {
		t.Fatalf("nothing of the crashed node runs; the test proves nothing")
	}
	for pid, cmdline := range leftovers {
		if strings.Contains(cmdline, "containerd --config") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, p := range []string{"/run/meshinit-node/state.json", root, "/sys/fs/cgroup/memory/meshinit-node"} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("the crashed run left no %s: %v", p, err)
		}
	}
	ports := bridgePorts(t)
	if v, _ := os.ReadFile("/proc/sys/kernel/panic"); strings.TrimSpace(string(v)) != "10" {
		t.Errorf("the crashed run's kubelet did not set kernel.panic (%q); the test proves less", v)
	}

	n, err := node.New(ctx, node.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if left := processesNaming(root); len(left) > 0 {
		t.Errorf("the crashed node's processes survive the next start: %v", left)
	}
	if _, err := os.Stat(root); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the crashed node's root %s survives the next start: %v", root, err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	lock, err = node.AcquireLock(ctx, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	diffHost(t, before, takeHost(t))
	portsGone(t, ports)
}

// runCrashChild starts a node with a running pod, says so, and waits to be killed.
func runCrashChild(t *testing.T) {
	ctx := context.Background()
	n, err := node.New(ctx, node.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.CreateNamespace(ctx, "work", nil); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "doomed", Namespace: "work"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "pause", Image: node.PauseImage, ImagePullPolicy: corev1.PullNever}}}}
	if err := n.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if _, err := n.WaitPodReady(ctx, "work", "doomed"); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CRASH-READY %s\n", n.Root)
	select {}
}

// processesNaming lists the processes whose command line contains s.
func processesNaming(s string) map[int]string {
	procs := map[int]string{}
	for pid, cmdline := range hoststate.Processes() {
		if strings.Contains(cmdline, s) {
			procs[pid] = cmdline
		}
	}
	return procs
}

// TestSecondNodeWaits holds the machine's node lock and shows that a second node waits for it,
// saying whose it is, and gets it once it is released.
func TestSecondNodeWaits(t *testing.T) {
	prereq.Root(t)
	ctx := t.Context()
	first, err := node.AcquireLock(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, err = node.AcquireLock(short, func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second lock while the first is held: %v; want it to wait", err)
	}
	if len(said) != 1 || !strings.Contains(said[0], fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("the waiting node said %q; want whom it waits for", said)
	}
	got := make(chan error, 1)
	go func() {
		second, err := node.AcquireLock(ctx, nil)
		if err == nil {
			second.Release()
		}
		got <- err
	}()
	first.Release()
	if err := <-got; err != nil {
		t.Errorf("the second lock once the first is released: %v", err)
	}
}

// TestRecover undoes what a crashed node left, if anything: `go test ./test/node -run TestRecover`
// is the cleanup by hand.
func TestRecover(t *testing.T) {
	prereq.Root(t)
	if err := node.Recover(t.Context(), t.Logf); err != nil {
		t.Fatal(err)
	}
}

// Package cninode runs kuma-cni as a cluster does, on the one-node kit (test/node): the chart's
// kuma-cni DaemonSet, from the images in bin/images, puts kuma-cni into the node's own conflist,
// containerd runs it for each pod, and pods injected in CNI mode start through it, validated by
// their validation container. What only a node shows is tested here: a node registering tainted,
// install-cni's logs and metrics, a DaemonSet rollout under a stream of new pods, the repair of pods
// started without rules, and the uninstall.
package cninode

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/cni/repair"
	"github.com/meshinit/meshinit/cni/taint"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/background"
	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/node"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/prereq"
)

// cniNamespace is where the chart puts the DaemonSet (cni.namespace's default).
const cniNamespace = "kube-system"

// TestCNIOnTheNode installs the chart's CNI part on the node and goes through what a cluster
// meets, in order, on the same node: it registers anew (tainted at once), the DaemonSet becomes
// ready (the taint goes), injected pods start with their rules, logged and counted; the DaemonSet
// rolls out while pods keep being created (kuma-cni never leaves the conflist, every pod gets its
// rules); pods without rules are repaired; the DaemonSet is deleted (kuma-cni leaves the node).
func TestCNIOnTheNode(t *testing.T) {
	node.Prerequisites(t)
	ctx := t.Context()
	images := requireImages(t)
	n := node.Start(ctx, t, node.Options{})
	k := newKit(t, n, images)

	t.Cleanup(func() {
		if t.Failed() {
			k.dump(t)
		}
	})
	t.Run("a node registering is tainted at once", k.bornTainted)
	if t.Failed() {
		t.FailNow()
	}
	k.installDaemonSet(t)
	t.Run("injected pods start with their rules", k.podsGetRules)
	t.Run("kuma-cni's lines in the DaemonSet's log, its calls in the metrics", k.logsAndMetrics)
	t.Run("a DaemonSet rollout leaves no window", k.rollout)
	t.Run("pods started without rules are repaired", k.repairs)
	t.Run("deleting the DaemonSet takes kuma-cni out", k.uninstall)
}

// kit is the node with the chart rendered for it.
type kit struct {
	n    *node.Node
	objs []*unstructured.Unstructured
	cfg  *config.Config
	// conflist is the node's conflist as the kit wrote it, before kuma-cni.
	conflist    []byte
	metricsPort int
	pods        int
}

// requireImages are the layouts the test runs: `make images` builds them.
func requireImages(t *testing.T) map[string]string {
	t.Helper()
	dir := filepath.Join(prereq.RepoRoot(t), "bin", "images")
	images := map[string]string{}
	for _, name := range []string{"kuma-cni", "kuma-init", "kuma-dp-standin", "echo"} {
		images[name] = prereq.File(t, filepath.Join(dir, name))
	}
	return images
}

func newKit(t *testing.T, n *node.Node, images map[string]string) *kit {
	t.Helper()
	ctx := t.Context()
	k := &kit{n: n, metricsPort: netkit.FreePort(t)}
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", map[string]any{"cni": map[string]any{
		"enabled": true, "chained": true, "netDir": n.CNIConfDir(), "binDir": n.CNIBinDir(), "confName": node.CNIConfList,
		"runDir": filepath.Join(n.Root, "run", "kuma-cni"), "logLevel": "debug",
		"readinessPort": netkit.FreePort(t), "metricsPort": k.metricsPort,
		// The node's pods must not wait long for the DaemonSet's.
		"resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "20Mi"}},
	}})
	k.objs = objs
	environ, err := charts.InjectorEnvironment(objs)
	if err != nil {
		t.Fatal(err)
	}
	if k.cfg, _, err = config.Load(environ); err != nil {
		t.Fatal(err)
	}
	// The images under the names the chart and the injector give them.
	ds := chartcases.Find[appsv1.DaemonSet](t, objs, "DaemonSet", "meshinit-cni")
	for ref, layout := range map[string]string{
		ds.Spec.Template.Spec.Containers[0].Image: images["kuma-cni"],
		k.cfg.Injector.InitContainer.Image:        images["kuma-init"],
		k.cfg.Injector.SidecarContainer.Image:     images["kuma-dp-standin"],
		appImage:                                  images["echo"],
	} {
		if err := n.ImportImage(ctx, layout, ref); err != nil {
			t.Fatal(err)
		}
	}
	if k.conflist, err = os.ReadFile(filepath.Join(n.CNIConfDir(), node.CNIConfList)); err != nil {
		t.Fatal(err)
	}
	// The taint controller runs as in the injector, with the chart's settings, for the whole test.
	mgr := kubeenv.Manager(t, n.Config, taint.CacheOptions(k.cfg.NodeTaintController))
	if err := taint.Setup(mgr, k.cfg.NodeTaintController); err != nil {
		t.Fatal(err)
	}
	background.Run(t, "the taint controller", mgr.Start)
	return k
}

// apply applies the rendered objects that keep selects, as kubectl apply --server-side would.
func (k *kit) apply(t *testing.T, keep func(*unstructured.Unstructured) bool) {
	t.Helper()
	for _, obj := range k.objs {
		if !keep(obj) {
			continue
		}
		if err := k.n.Client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("meshinit-test"), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}

// bornTainted: with the chart's MutatingAdmissionPolicy in place and no injector, the node
// registers again (its Node deleted, its kubelet restarted) and is created with the taint.
func (k *kit) bornTainted(t *testing.T) {
	ctx := t.Context()
	k.apply(t, func(o *unstructured.Unstructured) bool {
		return strings.HasPrefix(o.GetKind(), "MutatingAdmissionPolicy")
	})
	key := k.cfg.NodeTaintController.Key()
	// The policy takes effect once the API server loaded it: probe with Nodes of no kubelet.
	poll.Until(t, "the chart's policy taints a new Node", func() (bool, error) {
		probe := &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-", Labels: map[string]string{"kubernetes.io/os": "linux"}}}
		if err := k.n.Client.Create(ctx, probe); err != nil {
			return false, err
		}
		return slices.ContainsFunc(probe.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key }), k.n.Client.Delete(ctx, probe)
	})
	// Watched from the list's version: a watch from none starts with a synthetic Added of the
	// Node as it is, which the taint controller may already have tainted.
	byName := metav1.ListOptions{FieldSelector: "metadata.name=" + node.Name}
	list, err := k.n.Clientset.CoreV1().Nodes().List(ctx, byName)
	if err != nil {
		t.Fatal(err)
	}
	byName.ResourceVersion = list.ResourceVersion
	w, err := k.n.Clientset.CoreV1().Nodes().Watch(ctx, byName)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if err := k.n.Client.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node.Name}}); err != nil {
		t.Fatal(err)
	}
	if err := k.n.RestartKubelet(ctx); err != nil {
		t.Fatal(err)
	}
	for e := range w.ResultChan() {
		if e.Type != watch.Added {
			continue
		}
		created := e.Object.(*corev1.Node)
		if !slices.ContainsFunc(created.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key && t.Effect == taint.Effect }) {
			t.Errorf("the kubelet registered the node with the taints %v, without %s", created.Spec.Taints, key)
		}
		return
	}
	t.Error("the node was never created again")
}

// installDaemonSet applies the rest of the chart's CNI part and waits until its pod is ready and
// the node is no longer tainted.
func (k *kit) installDaemonSet(t *testing.T) {
	t.Helper()
	k.apply(t, func(o *unstructured.Unstructured) bool {
		return o.GetNamespace() == cniNamespace || (strings.HasSuffix(o.GetName(), "-cni") && strings.HasPrefix(o.GetKind(), "ClusterRole"))
	})
	k.waitDaemonSetRolledOut(t)
	k.waitUntainted(t)
}

func (k *kit) waitDaemonSetRolledOut(t *testing.T) {
	t.Helper()
	poll.Until(t, "the DaemonSet's pod on the node is ready and up to date", func() (bool, error) {
		var ds appsv1.DaemonSet
		if err := k.n.Client.Get(t.Context(), client.ObjectKey{Namespace: cniNamespace, Name: "meshinit-cni"}, &ds); err != nil {
			return false, err
		}
		s := ds.Status
		return s.ObservedGeneration == ds.Generation && s.UpdatedNumberScheduled == 1 && s.NumberReady == 1 && s.NumberUnavailable == 0, nil
	})
}

func (k *kit) waitUntainted(t *testing.T) {
	t.Helper()
	key := k.cfg.NodeTaintController.Key()
	poll.Until(t, "the taint controller takes "+key+" off the node", func() (bool, error) {
		var nd corev1.Node
		if err := k.n.Client.Get(t.Context(), client.ObjectKey{Name: node.Name}, &nd); err != nil {
			return false, err
		}
		return !slices.ContainsFunc(nd.Spec.Taints, func(t corev1.Taint) bool { return t.Key == key }), nil
	})
}

// podsGetRules: injected pods start, validated, with the rules of their configuration.
func (k *kit) podsGetRules(t *testing.T) {
	ctx := t.Context()
	if _, err := k.n.CreateNamespace(ctx, "meshed", nil); err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range 3 {
		names = append(names, k.createMeshed(t, "meshed", fmt.Sprintf("app-%d", i), nil).Name)
	}
	for _, name := range names {
		k.waitRules(t, "meshed", name)
	}
}

// createMeshed creates a pod as the injector makes it in CNI mode, its validation container as
// Kuma's injector runs it (see meshedPod), changed by edit.
func (k *kit) createMeshed(t *testing.T, namespace, name string, edit func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	pod := meshedPod(t, k.cfg, namespace, name)
	if edit != nil {
		edit(pod)
	}
	if err := k.n.Client.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	k.pods++
	return pod
}

// waitRules waits until the pod is Ready, which its validation container let it be, and checks
// its rules in its network namespace.
func (k *kit) waitRules(t *testing.T, namespace, name string) {
	t.Helper()
	pod, err := k.n.WaitPodReady(t.Context(), namespace, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"iptables-save", "ip6tables-save"} {
		out, err := k.n.Nsenter(t.Context(), pod, tool, "-t", "nat")
		if err != nil {
			t.Fatalf("%s in %s/%s: %v", tool, namespace, name, err)
		}
		if !strings.Contains(string(out), "-j KUMA_MESH_OUTBOUND") || !strings.Contains(string(out), "REDIRECT --to-ports 15006") {
			t.Errorf("pod %s/%s has not its rules (%s):\n%s", namespace, name, tool, out)
		}
	}
}

// logsAndMetrics: kuma-cni's lines of the pods above are in the DaemonSet's log (kubectl logs), and
// its calls in install-cni's metrics, on the node's address.
func (k *kit) logsAndMetrics(t *testing.T) {
	ctx := t.Context()
	pod := k.daemonSetPod(t)
	poll.Until(t, "kuma-cni's ADD of meshed/app-0 in the DaemonSet's log", func() (bool, error) {
		logs, err := k.n.Clientset.CoreV1().Pods(cniNamespace).GetLogs(pod.Name, &corev1.PodLogOptions{}).DoRaw(ctx)
		if err != nil {
			return false, err
		}
		for line := range strings.Lines(string(logs)) {
			if strings.Contains(line, `msg="ADD installed"`) && strings.Contains(line, "from=kuma-cni") && strings.Contains(line, "pod=meshed/app-0") {
				t.Logf("the DaemonSet's log: %s", strings.TrimSpace(line))
				return true, nil
			}
		}
		return false, nil
	})
	metrics := k.scrape(t)
	if got := metrics[`kuma_cni_commands_total{command="ADD",result="installed"}`]; got < 3 {
		t.Errorf("kuma_cni_commands_total{command=ADD,result=installed} = %v, want at least the 3 meshed pods", got)
	}
	if got := metrics[`kuma_cni_ready`]; got != 1 {
		t.Errorf("kuma_cni_ready = %v", got)
	}
	if got := metrics[`kuma_cni_add_duration_seconds_count{result="installed"}`]; got < 3 {
		t.Errorf("kuma_cni_add_duration_seconds_count{result=installed} = %v", got)
	}
}

// daemonSetPod is the DaemonSet's running pod, not being deleted.
func (k *kit) daemonSetPod(t *testing.T) *corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := k.n.Client.List(t.Context(), &pods, client.InNamespace(cniNamespace), client.MatchingLabels{"app": "meshinit-cni"}); err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp == nil {
			return &pods.Items[i]
		}
	}
	t.Fatal("no DaemonSet pod")
	return nil
}

// scrape reads install-cni's /metrics at the node's address, as Prometheus would from the pod's
// annotations, into sample name with labels → value.
func (k *kit) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	pod := k.daemonSetPod(t)
	if pod.Annotations["prometheus.io/port"] != strconv.Itoa(k.metricsPort) || pod.Annotations["prometheus.io/scrape"] != "true" {
		t.Errorf("the pod's scrape annotations: %v", pod.Annotations)
	}
	url := "http://" + net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(k.metricsPort)) + pod.Annotations["prometheus.io/path"]
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	samples := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			samples[line[:i]] = v
		}
	}
	return samples
}

// rollout: the DaemonSet's template changes, its pod is replaced, while pods are created every
// 200ms, bound to the node, from before the change until after the new pod is ready. kuma-cni must
// stay in the conflist throughout, and every pod must start with its rules.
func (k *kit) rollout(t *testing.T) {
	ctx := t.Context()
	if _, err := k.n.CreateNamespace(ctx, "rollout", nil); err != nil {
		t.Fatal(err)
	}
	// Every version of the conflist from now on.
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Add(k.n.CNIConfDir()); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var versions, missing int
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for range w.Events {
			data, err := os.ReadFile(filepath.Join(k.n.CNIConfDir(), node.CNIConfList))
			mu.Lock()
			versions++
			if err != nil || !conflist.HasEntry(data) {
				missing++
			}
			mu.Unlock()
		}
	}()

	old := k.daemonSetPod(t)
	// A pod every 200ms, the workload's pace, until told to stop.
	stop := make(chan struct{})
	var (
		namesMu sync.Mutex
		names   []string
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			name := fmt.Sprintf("pod-%02d", i)
			pod := meshedPod(t, k.cfg, "rollout", name)
			// Bound to the node, as the scheduler would have bound it before the taint controller
			// taints the node for the rollout: the kubelet starts it whatever the node's taints.
			pod.Spec.NodeName = node.Name
			if err := k.n.Client.Create(ctx, pod); err != nil {
				t.Error(err)
				return
			}
			namesMu.Lock()
			names = append(names, name)
			namesMu.Unlock()
		}
	}()
	created := func() int { namesMu.Lock(); defer namesMu.Unlock(); return len(names) }
	await := func(n int) {
		target := created() + n
		poll.Until(t, fmt.Sprintf("%d pods created", target), func() (bool, error) { return created() >= target, nil })
	}
	await(3) // pods before the rollout
	var ds appsv1.DaemonSet
	if err := k.n.Client.Get(ctx, client.ObjectKey{Namespace: cniNamespace, Name: "meshinit-cni"}, &ds); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(ds.DeepCopy())
	ds.Spec.Template.Annotations["meshinit.test/rollout"] = time.Now().Format(time.RFC3339Nano)
	if err := k.n.Client.Patch(ctx, &ds, patch); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the old DaemonSet pod is gone", func() (bool, error) {
		var p corev1.Pod
		err := k.n.Client.Get(ctx, client.ObjectKeyFromObject(old), &p)
		return client.IgnoreNotFound(err) == nil && err != nil, client.IgnoreNotFound(err)
	})
	k.waitDaemonSetRolledOut(t)
	await(3) // and after it
	close(stop)
	<-done
	for _, name := range names {
		k.waitRules(t, "rollout", name)
	}
	k.pods += len(names)
	w.Close()
	<-watchDone
	mu.Lock()
	defer mu.Unlock()
	t.Logf("figures: %d pods created over the rollout, each with its rules; the conflist changed %d times, without kuma-cni %d times",
		len(names), versions, missing)
	if missing > 0 {
		t.Errorf("kuma-cni left the conflist %d times during the rollout", missing)
	}
	if logs, err := k.n.Clientset.CoreV1().Pods(cniNamespace).GetLogs(k.daemonSetPod(t).Name, &corev1.PodLogOptions{}).DoRaw(ctx); err == nil &&
		bytes.Contains(logs, []byte("removed kuma-cni")) {
		t.Errorf("the new install-cni's log says kuma-cni was removed:\n%s", logs)
	}
	// Room on the node for the next pods.
	if err := k.n.Client.DeleteAllOf(ctx, &corev1.Pod{}, client.InNamespace("rollout")); err != nil {
		t.Error(err)
	}
}

// repairs: pods whose validation finds no rules (kuma-cni leaves pods that do not say they are
// injected alone) are recreated when a ReplicaSet owns them, and marked, not deleted, when they
// are a Job's with restartPolicy Never or nobody's.
func (k *kit) repairs(t *testing.T) {
	ctx := t.Context()
	if _, err := k.n.CreateNamespace(ctx, "repair", nil); err != nil {
		t.Fatal(err)
	}
	unannounced := func(p *corev1.Pod) { delete(p.Annotations, "kuma.io/sidecar-injected") }
	bare := k.createMeshed(t, "repair", "bare", unannounced)

	template := meshedPod(t, k.cfg, "repair", "")
	unannounced(template)
	labels := map[string]string{"app": "broken"}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "broken", Namespace: "repair"}, Spec: appsv1.ReplicaSetSpec{
		Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: template.Annotations}, Spec: template.Spec}}}
	if err := k.n.Client.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	jobSpec := template.Spec.DeepCopy()
	jobSpec.RestartPolicy = corev1.RestartPolicyNever
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: "repair"}, Spec: batchv1.JobSpec{BackoffLimit: ptr.To[int32](0),
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Annotations: template.Annotations}, Spec: *jobSpec}}}
	if err := k.n.Client.Create(ctx, job); err != nil {
		t.Fatal(err)
	}

	// The ReplicaSet's first pod is recreated; its next pods, once its template says they are
	// injected, start with their rules.
	var first corev1.Pod
	poll.Until(t, "the ReplicaSet's first pod", func() (bool, error) {
		var pods corev1.PodList
		err := k.n.Client.List(ctx, &pods, client.InNamespace("repair"), client.MatchingLabels(labels))
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		first = pods.Items[0]
		return true, nil
	})
	poll.Until(t, "the repair deletes it", func() (bool, error) {
		var p corev1.Pod
		err := k.n.Client.Get(ctx, client.ObjectKeyFromObject(&first), &p)
		return client.IgnoreNotFound(err) == nil && (err != nil || p.DeletionTimestamp != nil || p.UID != first.UID), client.IgnoreNotFound(err)
	})
	patch := client.MergeFrom(rs.DeepCopy())
	rs.Spec.Template.Annotations["kuma.io/sidecar-injected"] = "true"
	if err := k.n.Client.Patch(ctx, rs, patch); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "a pod of the ReplicaSet starts, its validation passing", func() (bool, error) {
		var pods corev1.PodList
		if err := k.n.Client.List(ctx, &pods, client.InNamespace("repair"), client.MatchingLabels(labels)); err != nil {
			return false, err
		}
		for _, p := range pods.Items {
			if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(&p) {
				return true, nil
			}
		}
		return false, nil
	})

	// The Job's pod and the bare one are marked, and stay.
	poll.Until(t, "the Job's pod is marked", func() (bool, error) {
		var pods corev1.PodList
		if err := k.n.Client.List(ctx, &pods, client.InNamespace("repair"), client.MatchingLabels{"batch.kubernetes.io/job-name": "once"}); err != nil {
			return false, err
		}
		return len(pods.Items) == 1 && markedFalse(&pods.Items[0]), nil
	})
	poll.Until(t, "the bare pod is marked", func() (bool, error) {
		var p corev1.Pod
		if err := k.n.Client.Get(ctx, client.ObjectKeyFromObject(bare), &p); err != nil {
			return false, err
		}
		return p.DeletionTimestamp == nil && markedFalse(&p), nil
	})
	var events corev1.EventList
	if err := k.n.Client.List(ctx, &events, client.InNamespace("repair")); err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range events.Items {
		if e.Source.Component == "install-cni" {
			reasons = append(reasons, e.InvolvedObject.Name+": "+e.Reason+": "+e.Message)
		}
	}
	if len(reasons) < 3 {
		t.Errorf("install-cni's events: %q; want one for each repaired pod", reasons)
	}
	t.Logf("install-cni's events:\n%s", strings.Join(reasons, "\n"))
	metrics := k.scrape(t)
	if metrics[`kuma_cni_repairs_total{action="recreated",reason="ValidationFailed"}`] < 1 || metrics[`kuma_cni_repairs_total{action="marked",reason="ValidationFailed"}`] < 2 {
		t.Errorf("kuma_cni_repairs_total: recreated %v, marked %v", metrics[`kuma_cni_repairs_total{action="recreated",reason="ValidationFailed"}`],
			metrics[`kuma_cni_repairs_total{action="marked",reason="ValidationFailed"}`])
	}
}

func podReady(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue })
}

func markedFalse(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == repair.ConditionType && c.Status == corev1.ConditionFalse && c.Reason == repair.ReasonValidationFailed
	})
}

// uninstall: the DaemonSet deleted as helm uninstall deletes it (in the background), its pod stops
// and takes kuma-cni out: the conflist is the kit's again, byte for byte, and nothing of kuma-cni's
// is left in the node's directories.
func (k *kit) uninstall(t *testing.T) {
	ctx := t.Context()
	pod := k.daemonSetPod(t)
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: cniNamespace, Name: "meshinit-cni"}}
	if err := k.n.Client.Delete(ctx, ds, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the DaemonSet's pod is gone", func() (bool, error) {
		var p corev1.Pod
		err := k.n.Client.Get(ctx, client.ObjectKeyFromObject(pod), &p)
		return err != nil, client.IgnoreNotFound(err)
	})
	if got, err := os.ReadFile(filepath.Join(k.n.CNIConfDir(), node.CNIConfList)); err != nil || !bytes.Equal(got, k.conflist) {
		t.Errorf("the conflist after the uninstall (%v):\n%s\nwant the kit's:\n%s", err, got, k.conflist)
	}
	for _, p := range []string{filepath.Join(k.n.CNIBinDir(), "kuma-cni"), filepath.Join(k.n.CNIConfDir(), "kuma-cni-kubeconfig")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is left after the uninstall", p)
		}
	}
}

// dump logs what a failure needs: the DaemonSet's log, and the test's pods and events.
func (k *kit) dump(t *testing.T) {
	ctx := context.WithoutCancel(t.Context())
	var pods corev1.PodList
	if err := k.n.Client.List(ctx, &pods); err != nil {
		t.Log(err)
		return
	}
	for _, p := range pods.Items {
		if p.Namespace == cniNamespace {
			if logs, err := k.n.Clientset.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{}).DoRaw(ctx); err == nil {
				t.Logf("log of %s/%s:\n%s", p.Namespace, p.Name, logs)
			}
			continue
		}
		t.Logf("pod %s/%s: phase %s, conditions %+v, init containers %+v", p.Namespace, p.Name, p.Status.Phase, p.Status.Conditions, p.Status.InitContainerStatuses)
	}
	var events corev1.EventList
	if err := k.n.Client.List(ctx, &events); err == nil {
		for _, e := range events.Items {
			t.Logf("event %s/%s %s: %s %s", e.Namespace, e.InvolvedObject.Name, e.Source.Component, e.Reason, e.Message)
		}
	}
}

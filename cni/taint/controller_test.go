package taint

import (
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/background"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/poll"
)

// elsewhere is a namespace other than the CNI's.
const elsewhere = "elsewhere"

var (
	// ourTaint's key is not the default one, so that the setting is seen to be honoured.
	ourTaint = corev1.Taint{Key: "meshinit.io/cni-not-ready", Effect: Effect}
	other    = corev1.Taint{Key: "example.com/dedicated", Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	// notReady is put on every new node by the API server (TaintNodesByCondition admission); with
	// no node lifecycle controller here it stays: one more taint that must survive every change.
	notReady = corev1.Taint{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}
)

// TestController runs the controller against a real API server, once with the manager's default
// cache (every pod cached, predicates filter) and once with CacheOptions; each run has its own nodes.
func TestController(t *testing.T) {
	env := kubeenv.Start(t)
	// The cache's informers log through controller-runtime's global logger, which otherwise
	// complains, with a stack trace, that it was never set. Not testr: it outlives this test.
	log.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{}))
	// Not the default namespace, so that the setting is seen to be honoured.
	cfg := config.NodeTaintController{Enabled: true, CNIApp: "kuma-cni", CNINamespace: "kuma-cni-system", TaintKey: ourTaint.Key,
		Nodes: labels.SelectorFromSet(labels.Set{"kubernetes.io/os": "linux"})}
	for _, ns := range []string{cfg.CNINamespace, elsewhere} {
		if err := env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, run := range []struct {
		name, prefix string
		cache        cache.Options
	}{
		{"cluster-wide cache", "a", cache.Options{}},
		{"cache restricted by CacheOptions", "b", CacheOptions(cfg)},
	} {
		t.Run(run.name, func(t *testing.T) {
			startManager(t, env.Config, cfg, run.cache)
			k := &cluster{c: env.Client, cfg: cfg, prefix: run.prefix}
			t.Run("readiness", k.readiness)
			t.Run("registered with taints", k.registeredWithTaints)
			t.Run("pods that are not CNI pods", k.notCNIPods)
			t.Run("nodes the DaemonSet does not cover", k.uncovered)
		})
	}
}

// startManager runs a manager with the controller until the test ends.
func startManager(t *testing.T, restConfig *rest.Config, cfg config.NodeTaintController, cacheOpts cache.Options) {
	t.Helper()
	mgr := kubeenv.Manager(t, restConfig, cacheOpts)
	if err := Setup(mgr, cfg); err != nil {
		t.Fatal(err)
	}
	background.Run(t, "manager", mgr.Start)
}

// cluster drives the API server as the kubelet and the DaemonSet controller would.
type cluster struct {
	c      client.Client
	cfg    config.NodeTaintController
	prefix string
}

// readiness: a new node is tainted until its CNI pod is ready, and again when the pod stops being
// ready, is terminating, or is gone.
func (k *cluster) readiness(t *testing.T) {
	node := k.node(t, "n1")
	k.waitTaints(t, node, notReady, ourTaint)

	p1 := k.pod(t, k.cfg.CNINamespace, "cni-1", node, k.cfg.CNIApp)
	k.setReady(t, p1, true)
	k.waitTaints(t, node, notReady)

	k.setReady(t, p1, false)
	k.waitTaints(t, node, notReady, ourTaint)

	k.setReady(t, p1, true)
	k.waitTaints(t, node, notReady)
	// Without a kubelet to confirm, the graceful delete leaves the pod terminating, still Ready.
	if err := k.c.Delete(t.Context(), p1); err != nil {
		t.Fatal(err)
	}
	k.waitTaints(t, node, notReady, ourTaint)

	// The DaemonSet's replacement, alongside the terminating pod.
	p2 := k.pod(t, k.cfg.CNINamespace, "cni-2", node, k.cfg.CNIApp)
	k.setReady(t, p2, true)
	k.waitTaints(t, node, notReady)
	if err := k.c.Delete(t.Context(), p2, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	k.waitTaints(t, node, notReady, ourTaint)
}

// registeredWithTaints: a node that comes with our taint and another keeps the other one through
// every change, including one made meanwhile by someone else.
func (k *cluster) registeredWithTaints(t *testing.T) {
	node := k.node(t, "n2", other, ourTaint)
	pod := k.pod(t, k.cfg.CNINamespace, "cni-3", node, k.cfg.CNIApp)
	k.setReady(t, pod, true)
	k.waitTaints(t, node, notReady, other)

	k.setReady(t, pod, false)
	k.waitTaints(t, node, notReady, other, ourTaint)

	maintenance := corev1.Taint{Key: "example.com/maintenance", Effect: corev1.TaintEffectPreferNoSchedule}
	k.editTaints(t, node, func(taints []corev1.Taint) []corev1.Taint { return append(taints, maintenance) })
	k.setReady(t, pod, true)
	k.waitTaints(t, node, notReady, other, maintenance)

	if err := k.c.Delete(t.Context(), pod, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	k.waitTaints(t, node, notReady, other, maintenance, ourTaint)
}

// notCNIPods: ready pods with the CNI label in another namespace, or in the CNI namespace with
// another label, do not untaint their node.
func (k *cluster) notCNIPods(t *testing.T) {
	node := k.node(t, "n3")
	k.waitTaints(t, node, notReady, ourTaint)
	k.setReady(t, k.pod(t, elsewhere, "cni-elsewhere", node, k.cfg.CNIApp), true)
	k.setReady(t, k.pod(t, k.cfg.CNINamespace, "not-cni", node, "something-else"), true)

	// A real CNI pod on another node, ready after those: once its node is untainted, the pod
	// informer has delivered the pods above too (one watch, in order).
	sentinel := k.node(t, "n4")
	k.setReady(t, k.pod(t, k.cfg.CNINamespace, "cni-4", sentinel, k.cfg.CNIApp), true)
	k.waitTaints(t, sentinel, notReady)

	// Someone removes our taint: the controller, now with those pods cached, puts it back.
	k.editTaints(t, node, func(taints []corev1.Taint) []corev1.Taint { return slices.DeleteFunc(taints, ours(ourTaint.Key)) })
	k.waitTaints(t, node, notReady, ourTaint)
}

// uncovered: a node outside the DaemonSet's node selector (a Windows node, here) is never tainted,
// and loses our taint when it leaves the selector; one that enters it is tainted.
func (k *cluster) uncovered(t *testing.T) {
	windows := k.node(t, "n5")
	k.waitTaints(t, windows, notReady, ourTaint)
	k.setLabel(t, windows, "kubernetes.io/os", "windows")
	k.waitTaints(t, windows, notReady)

	// Created outside the selector: once a covered node created after it is tainted, it has
	// been reconciled too (one watch, in order).
	bornWindows := k.nodeWithLabels(t, "n6", map[string]string{"kubernetes.io/os": "windows"})
	sentinel := k.node(t, "n7")
	k.waitTaints(t, sentinel, notReady, ourTaint)
	k.waitTaints(t, bornWindows, notReady)

	k.setLabel(t, bornWindows, "kubernetes.io/os", "linux")
	k.waitTaints(t, bornWindows, notReady, ourTaint)
}

// setLabel sets a node's label as an operator would.
func (k *cluster) setLabel(t *testing.T, name, key, value string) {
	t.Helper()
	var node corev1.Node
	if err := k.c.Get(t.Context(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(node.DeepCopy())
	node.Labels[key] = value
	if err := k.c.Patch(t.Context(), &node, patch); err != nil {
		t.Fatal(err)
	}
}

// node creates a Linux node named after k's prefix, with taints as if registered with them.
func (k *cluster) node(t *testing.T, name string, taints ...corev1.Taint) string {
	t.Helper()
	return k.nodeWithLabels(t, name, map[string]string{"kubernetes.io/os": "linux"}, taints...)
}

// nodeWithLabels creates a node named after k's prefix with those labels and taints.
func (k *cluster) nodeWithLabels(t *testing.T, name string, nodeLabels map[string]string, taints ...corev1.Taint) string {
	t.Helper()
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.prefix + "-" + name, Labels: nodeLabels},
		Spec:       corev1.NodeSpec{Taints: taints},
	}
	if err := k.c.Create(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	return n.Name
}

// pod creates a pending pod labelled app=app, bound to node.
func (k *cluster) pod(t *testing.T, namespace, name, node, app string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: k.prefix + "-" + name, Labels: map[string]string{appLabel: app}},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "install-cni", Image: "kuma-cni"}},
			// No ServiceAccount tokens: envtest runs no controllers that would create them.
			AutomountServiceAccountToken: ptr.To(false),
		},
	}
	if err := k.c.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

// setReady reports the pod running with its PodReady condition as ready, as the kubelet would.
func (k *cluster) setReady(t *testing.T, pod *corev1.Pod, ready bool) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	if err := k.c.Get(t.Context(), client.ObjectKeyFromObject(pod), pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	if err := k.c.Status().Update(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
}

// editTaints changes a node's taints as another party would.
func (k *cluster) editTaints(t *testing.T, name string, edit func([]corev1.Taint) []corev1.Taint) {
	t.Helper()
	var node corev1.Node
	if err := k.c.Get(t.Context(), client.ObjectKey{Name: name}, &node); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFromWithOptions(node.DeepCopy(), client.MergeFromWithOptimisticLock{})
	node.Spec.Taints = edit(node.Spec.Taints)
	if err := k.c.Patch(t.Context(), &node, patch); err != nil {
		t.Fatal(err)
	}
}

// waitTaints waits until the node has exactly the taints want, in any order.
func (k *cluster) waitTaints(t *testing.T, name string, want ...corev1.Taint) {
	t.Helper()
	var got []corev1.Taint
	err := poll.Wait(t.Context(), func() (bool, error) {
		var node corev1.Node
		if err := k.c.Get(t.Context(), client.ObjectKey{Name: name}, &node); err != nil {
			return false, err
		}
		got = node.Spec.Taints
		return cmp.Equal(want, got, taintsEqual...), nil
	})
	if err != nil {
		t.Fatalf("node %s: %v; taints (-want +got):\n%s", name, err, cmp.Diff(want, got, taintsEqual...))
	}
}

var taintsEqual = []cmp.Option{
	cmpopts.EquateEmpty(),
	cmpopts.SortSlices(func(a, b corev1.Taint) bool { return fmt.Sprint(a) < fmt.Sprint(b) }),
}

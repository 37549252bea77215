package chart

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/cni/taint"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/background"
	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/poll"
)

// TestNodesBornTainted: with the chart installed and no injector running, a Node is created with
// the taint already, by the chart's MutatingAdmissionPolicy in the API server; nodes outside the
// DaemonSet's selector and nodes that come with the taint are left as they are. Once the injector
// runs, its taint controller takes the taint off when a ready CNI pod runs on the node.
func TestNodesBornTainted(t *testing.T) {
	e := shared.Get(t)
	const release = "born-tainted"
	// A key of this release's own: other installs in this API server have policies too.
	const key = "example.com/born-tainted"
	objs := install(t.Context(), t, chartcases.Case{Name: release, Set: []string{"cni.enabled=true", "cni.chained=true",
		"cni.taintController.taintKey=" + key}}, release)
	ours := func(t corev1.Taint) bool { return t.Key == key && t.Effect == corev1.TaintEffectNoSchedule }

	// The policy takes effect once the API server has loaded it: a first node may come before.
	err := poll.Wait(t.Context(), func() (bool, error) {
		probe := &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "born-tainted-probe-", Labels: map[string]string{"kubernetes.io/os": "linux"}}}
		if err := e.Client.Create(t.Context(), probe); err != nil {
			return false, err
		}
		return slices.ContainsFunc(probe.Spec.Taints, ours), e.Client.Delete(t.Context(), probe)
	})
	if err != nil {
		t.Fatalf("the chart's policy never tainted a node: %v", err)
	}

	linux := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "born-linux", Labels: map[string]string{"kubernetes.io/os": "linux"}}}
	windows := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "born-windows", Labels: map[string]string{"kubernetes.io/os": "windows"}}}
	registered := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "born-registered", Labels: map[string]string{"kubernetes.io/os": "linux"}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: key, Value: "kubelet", Effect: corev1.TaintEffectNoSchedule}}}}
	for _, tc := range []struct {
		node *corev1.Node
		want int
	}{{linux, 1}, {windows, 0}, {registered, 1}} {
		if err := e.Client.Create(t.Context(), tc.node); err != nil {
			t.Fatal(err)
		}
		// As created, before any controller could see it.
		if got := len(slices.DeleteFunc(slices.Clone(tc.node.Spec.Taints), func(t corev1.Taint) bool { return !ours(t) })); got != tc.want {
			t.Errorf("node %s was created with %d of the taint %s, want %d: %v", tc.node.Name, got, key, tc.want, tc.node.Spec.Taints)
		}
	}

	// The injector comes up: its taint controller, with the chart's settings and rights.
	environ, err := charts.InjectorEnvironment(objs)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(environ)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NodeTaintController.Key() != key {
		t.Fatalf("the injector's taint key is %q, want the chart's %q", cfg.NodeTaintController.Key(), key)
	}
	mgr := kubeenv.Manager(t, as(e.Config, release, release+"-meshinit-injector"), taint.CacheOptions(cfg.NodeTaintController))
	if err := taint.Setup(mgr, cfg.NodeTaintController); err != nil {
		t.Fatal(err)
	}
	background.Run(t, "the taint controller", mgr.Start)
	readyCNIPod(t, e.Client, cfg.NodeTaintController, "born-cni", linux.Name)
	poll.Until(t, "the taint controller takes the taint off the node with a ready CNI pod", func() (bool, error) {
		var n corev1.Node
		if err := e.Client.Get(t.Context(), client.ObjectKeyFromObject(linux), &n); err != nil {
			return false, err
		}
		return !slices.ContainsFunc(n.Spec.Taints, ours), nil
	})
}

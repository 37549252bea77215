package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/cni/taint"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/cniconf"
	"github.com/meshinit/meshinit/test/logbuf"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook"
	"github.com/meshinit/meshinit/webhook/inject"
)

// TestAPIServerRestarted kills kube-apiserver, etcd running on, under the injector's taint
// controller and under kuma-cni, and starts it again on the same port with the same certificates,
// as after a crash. Neither may need a restart of its own. It logs the outage and how long each
// took to recover.
func TestAPIServerRestarted(t *testing.T) {
	cp := startControlPlane(t)
	t.Run("taint controller", func(t *testing.T) { taintControllerRecovers(t, cp) })
	t.Run("kuma-cni", func(t *testing.T) { kumaCNIRidesOutTheRestart(t, cp) })
}

// taintControllerRecovers runs the injector with its taint controller through an outage of the
// API server: the changes made right after the API server's return, a CNI pod that stops being
// ready and a new node, must be reconciled by the same injector.
func taintControllerRecovers(t *testing.T, cp *controlPlane) {
	cfg := testconfig.Default()
	cfg.NodeTaintController = config.NodeTaintController{Enabled: true, CNIApp: "kuma-cni", CNINamespace: "kube-system"}
	done := startInjector(t, cp, cfg)

	before := createNode(t, cp.Client, "node-before")
	waitTaint(t, cp.Client, before.Name, true)
	cniPod := createCNIPod(t, cp.Client, cfg.NodeTaintController, before.Name)
	setReady(t, cp.Client, cniPod, true)
	waitTaint(t, cp.Client, before.Name, false)

	killed := time.Now()
	cp.stopAPIServer(t)
	back := cp.startAPIServer(t)
	setReady(t, cp.Client, cniPod, false)
	after := createNode(t, cp.Client, "node-after")
	changed := time.Now()
	waitTaint(t, cp.Client, before.Name, true)
	tainted := time.Now()
	waitTaint(t, cp.Client, after.Name, true)
	newNode := time.Now()
	select {
	case err := <-done:
		t.Fatalf("the injector stopped during the outage: %v", err)
	default:
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	t.Logf("API server killed, listening again %v later, healthy %v later; changes made right after, done %v after it was healthy; "+
		"reconciled %v (CNI pod not ready: node tainted) and %v (new node tainted) after the changes",
		ms(back.listening.Sub(killed)), ms(back.healthy.Sub(killed)), ms(changed.Sub(back.healthy)),
		ms(tainted.Sub(changed)), ms(newNode.Sub(changed)))
}

// startInjector runs the injector (webhook.NewManager) with cfg until the test ends, and returns
// what its Start returns, should it stop early.
func startInjector(t *testing.T, cp *controlPlane, cfg *config.Config) <-chan error {
	t.Helper()
	certs := envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}
	if err := certs.PrepWithoutInstalling(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = certs.Cleanup() })
	cfg.AdmissionServer.Port, cfg.AdmissionServer.CertDir = uint16(certs.LocalServingPort), certs.LocalServingCertDir
	logs := &logbuf.Buffer{}
	logger := logs.Logger()
	// The cache's informers log through controller-runtime's global logger.
	log.SetLogger(logger)
	mgr, err := webhook.NewManager(cp.Config, webhook.ServerOptions{Config: cfg, Host: certs.LocalServingHost, MetricsAddr: "0", HealthAddr: "0",
		Log: logger, Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("the injector's log:\n%s", logs)
		}
	})
	return done
}

func createNode(t *testing.T, c client.Client, name string) *corev1.Node {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(t.Context(), node); err != nil {
		t.Fatal(err)
	}
	return node
}

// createCNIPod creates install-cni's pod of the DaemonSet on node, not ready yet.
func createCNIPod(t *testing.T, c client.Client, cfg config.NodeTaintController, node string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: cfg.CNINamespace, Name: "cni-" + node, Labels: map[string]string{"app": cfg.CNIApp}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "install-cni", Image: "kuma-cni"}},
			AutomountServiceAccountToken: ptr.To(false)},
	}
	if err := c.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// setReady sets the pod's Ready condition, as its kubelet would.
func setReady(t *testing.T, c client.Client, pod *corev1.Pod, ready bool) {
	t.Helper()
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
}

// waitTaint waits until the node has (or has not) the taint controller's taint.
func waitTaint(t *testing.T, c client.Client, name string, want bool) {
	t.Helper()
	poll.Until(t, fmt.Sprintf("node %s has taint %s: %v", name, settings.NodeTaintControllerTaintKey.Default, want), func() (bool, error) {
		var node corev1.Node
		if err := c.Get(t.Context(), client.ObjectKey{Name: name}, &node); err != nil {
			return false, err
		}
		return slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool {
			return t.Key == settings.NodeTaintControllerTaintKey.Default && t.Effect == taint.Effect
		}) == want, nil
	})
}

// kumaCNIRidesOutTheRestart runs kuma-cni through libcni, chained after ptp as a runtime runs a
// provider's conflist, while the API server is down. An ADD while it stays down past kuma-cni's
// retries fails, naming the pod and the API server, and leaves no rule; the runtime's next ADD,
// made while it is still down, succeeds once it is back.
func kumaCNIRidesOutTheRestart(t *testing.T, cp *controlPlane) {
	prereq.Root(t)
	for _, p := range []string{"ptp", "host-local"} {
		prereq.File(t, filepath.Join(cniconf.DebianPlugins, p))
	}
	kumaCNI := binaries.Build(t, "kuma-cni")
	createInjectedPod(t, cp)
	// A provider's conflist with kuma-cni chained after it, as install-cni chains it; a subnet
	// of its own, since cnichain's tests may run at the same time.
	list := cniconf.List(t, "1.0.0", cniconf.ClusterNetwork(t, 100), cniconf.KumaCNI(cp.WriteKubeconfig(t)))
	runtime := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(kumaCNI), cniconf.DebianPlugins}, t.TempDir(), nil)
	add := func(ns *netkit.Namespace) error {
		rt := cniconf.Runtime(ns, "default", "meshed", "eth0")
		_, err := runtime.AddNetworkList(context.Background(), list, rt)
		// As a runtime does after an ADD, failed or not, when it gives the sandbox up.
		t.Cleanup(func() { _ = runtime.DelNetworkList(context.Background(), list, rt) })
		return err
	}

	cp.stopAPIServer(t)
	failed := netkit.NewBare(t)
	start := time.Now()
	err := add(failed)
	gaveUp := time.Since(start)
	if err == nil {
		t.Fatal("ADD succeeded with the API server down")
	}
	for _, want := range []string{"kuma-cni: pod default/meshed:", strings.TrimSuffix(cp.Config.Host, "/")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the failed ADD's error does not name %q: %v", want, err)
		}
	}
	if rules := failed.Run(t, "iptables-save") + failed.Run(t, "ip6tables-save"); strings.Contains(rules, "KUMA_MESH") {
		t.Errorf("the failed ADD left rules:\n%s", rules)
	}
	t.Logf("ADD with the API server down gave up after %v: %v", gaveUp.Round(time.Millisecond), err)

	retried := netkit.NewBare(t)
	var wg sync.WaitGroup
	var retryErr error
	var retryDone time.Time
	retryStart := time.Now()
	wg.Go(func() { retryErr = add(retried); retryDone = time.Now() })
	back := cp.startAPIServer(t)
	wg.Wait()
	if retryErr != nil {
		t.Fatalf("ADD while the API server restarted: %v", retryErr)
	}
	if rules := retried.Run(t, "iptables-save"); !strings.Contains(rules, "KUMA_MESH_OUTBOUND") {
		t.Errorf("the ADD that rode out the restart installed no rules:\n%s", rules)
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	t.Logf("the next ADD, started with the API server still down: API server listening again %v later, healthy %v later; "+
		"ADD done %v after it listened again (%v in all)",
		ms(back.listening.Sub(retryStart)), ms(back.healthy.Sub(retryStart)), ms(retryDone.Sub(back.listening)), ms(retryDone.Sub(retryStart)))
}

// createInjectedPod creates the pod "meshed" in default as the injector makes it.
func createInjectedPod(t *testing.T, cp *controlPlane) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "meshed", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
	res, err := (&inject.Injector{Config: testconfig.Default(), NativeSidecars: true}).Inject(pod, "default",
		map[string]string{api.LabelSidecarInjection: "enabled"})
	if err != nil || !res.Injected {
		t.Fatalf("injecting: %v %+v", err, res)
	}
	if err := cp.Client.Create(t.Context(), res.Pod); err != nil {
		t.Fatal(err)
	}
}

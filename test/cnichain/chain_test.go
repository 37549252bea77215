// Package cnichain runs kuma-cni as a runtime does: chained after Debian's reference plugins in a
// conflist given to libcni, for a real network namespace, fetching the pod from a real API server.
package cnichain

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/cniconf"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

// chain is a conflist as a cluster's CNI ships it, ptp with host-local, then kuma-cni.
func chain(t *testing.T, version, kubeconfig string, subnet int) *libcni.NetworkConfigList {
	t.Helper()
	return cniconf.List(t, version, cniconf.ClusterNetwork(t, subnet), cniconf.KumaCNI(kubeconfig))
}

func createPod(t *testing.T, env *kubeenv.Env, name string, annotations map[string]string, injected bool) {
	t.Helper()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
	if injected {
		res, err := (&inject.Injector{Config: testconfig.Default(), NativeSidecars: true}).Inject(pod, "default",
			map[string]string{api.LabelSidecarInjection: "enabled"})
		if err != nil || !res.Injected {
			t.Fatalf("injecting: %v %+v", err, res)
		}
		pod = res.Pod
	}
	if err := env.Client.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
}

// createPods creates the pods the tests attach: "meshed", injected with port 5432 excluded from
// outbound capture, and "plain", not injected.
func createPods(t *testing.T, env *kubeenv.Env) {
	t.Helper()
	createPod(t, env, "meshed", map[string]string{api.AnnotationExcludeOutboundPorts: "5432"}, true)
	createPod(t, env, "plain", nil, false)
}

// pod is one of the pods of createPods, in a bare network namespace of its own.
type pod struct {
	*netkit.Namespace
	name string
}

// newPods gives the pods of createPods their network namespaces.
func newPods(t *testing.T) (meshed, plain pod) {
	return pod{netkit.NewBare(t), "meshed"}, pod{netkit.NewBare(t), "plain"}
}

func (p pod) runtimeConf() *libcni.RuntimeConf {
	return cniconf.Runtime(p.Namespace, "default", p.name, "eth0")
}

// requirePlugins: the tests need root and the reference plugins of the cluster's network.
func requirePlugins(t *testing.T) {
	t.Helper()
	prereq.Root(t)
	for _, p := range []string{"ptp", "host-local"} {
		prereq.File(t, filepath.Join(cniconf.DebianPlugins, p))
	}
}

// checkCapture checks what kuma-cni's ADD did for the pods of createPods: the injected pod has the
// rules and its traffic goes as its annotations say; the other pod has no rules of ours.
func checkCapture(t *testing.T, meshed, plain pod) {
	t.Helper()
	if rules := meshed.Run(t, "iptables-save"); !strings.Contains(rules, "KUMA_MESH_OUTBOUND") {
		t.Fatalf("the injected pod has no rules:\n%s", rules)
	}
	if rules := plain.Run(t, "iptables-save") + plain.Run(t, "ip6tables-save"); strings.Contains(rules, "meshinit") {
		t.Errorf("the pod without injection got rules:\n%s", rules)
	}
	meshed.ListenTCP(t, "sidecar-outbound", netip.MustParseAddrPort("127.0.0.1:15001"), netkit.OwnedBy(5678))
	dst := netip.MustParseAddrPort("192.0.2.1:80")
	reply, err := meshed.DialTCP(t, dst, netkit.AsUID(1000))
	if err != nil || reply.Listener != "sidecar-outbound" || reply.OriginalDst != dst {
		t.Errorf("outbound TCP from the injected pod: %+v, %v", reply, err)
	}
	if reply, err := meshed.DialTCP(t, netip.MustParseAddrPort("192.0.2.1:5432"), netkit.AsUID(1000), netkit.WithTimeout(300e6)); err == nil {
		t.Errorf("TCP to the excluded port 5432 was captured: %+v", reply)
	}
}

func TestChainInstallsThePodsRules(t *testing.T) {
	requirePlugins(t)
	env := kubeenv.Start(t)
	kubeconfig := env.WriteKubeconfig(t)
	kumaCNI := binaries.Build(t, "kuma-cni")
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(kumaCNI), cniconf.DebianPlugins}, t.TempDir(), nil)

	createPods(t, env)

	for i, version := range []string{"0.3.1", "0.4.0", "1.0.0"} {
		t.Run(version, func(t *testing.T) {
			list := chain(t, version, kubeconfig, i)
			meshed, plain := newPods(t)
			for _, p := range []pod{meshed, plain} {
				rt := p.runtimeConf()
				result, err := cniConfig.AddNetworkList(context.Background(), list, rt)
				if err != nil {
					t.Fatalf("ADD %s: %v", p.name, err)
				}
				t.Cleanup(func() {
					if err := cniConfig.DelNetworkList(context.Background(), list, rt); err != nil {
						t.Errorf("DEL %s: %v", p.name, err)
					}
				})
				if out, _ := json.Marshal(result); !strings.Contains(string(out), "10.222.") {
					t.Errorf("ADD %s did not pass ptp's result on: %s", p.name, out)
				}
				if version != "0.3.1" {
					if err := cniConfig.CheckNetworkList(context.Background(), list, rt); err != nil {
						t.Errorf("CHECK %s: %v", p.name, err)
					}
				}
			}
			checkCapture(t, meshed, plain)

			// CHECK notices a rule of ours gone missing.
			if version != "0.3.1" {
				meshed.Run(t, "iptables", "-t", "nat", "-D", "KUMA_MESH_OUTBOUND_REDIRECT", "1")
				err := cniConfig.CheckNetworkList(context.Background(), list, meshed.runtimeConf())
				if err == nil || !strings.Contains(err.Error(), "kuma-cni: pod default/meshed: ipv4: the rules of ours are not those of the configuration") {
					t.Errorf("CHECK with a rule removed: %v", err)
				}
			}
		})
	}
}

// TestChainInstallsWithTheInjectorsBackend: with the injector's backend set to nftables, kuma-cni
// installs the pod's rules as the pod's configuration says, in our nftables tables and nowhere in
// iptables, on a node whose iptables tools are there for auto to take; CHECK reads them back, and
// notices a rule of ours gone.
func TestChainInstallsWithTheInjectorsBackend(t *testing.T) {
	requirePlugins(t)
	nft := prereq.Binary(t, "nft")
	env := kubeenv.Start(t)
	kubeconfig := env.WriteKubeconfig(t)
	kumaCNI := binaries.Build(t, "kuma-cni")
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(kumaCNI), cniconf.DebianPlugins}, t.TempDir(), nil)

	cfg := testconfig.Default()
	cfg.Injector.TransparentProxyBackend = api.BackendNFTables
	spec := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "meshed-nft", Namespace: "default", Annotations: map[string]string{api.AnnotationExcludeOutboundPorts: "5432"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}}
	res, err := (&inject.Injector{Config: cfg, NativeSidecars: true}).Inject(spec, "default", map[string]string{api.LabelSidecarInjection: "enabled"})
	if err != nil || !res.Injected {
		t.Fatalf("injecting: %v %+v", err, res)
	}
	if err := env.Client.Create(t.Context(), res.Pod); err != nil {
		t.Fatal(err)
	}
	createPod(t, env, "plain", nil, false)
	meshed, plain := pod{netkit.NewBare(t), "meshed-nft"}, pod{netkit.NewBare(t), "plain"}
	list := chain(t, "1.0.0", kubeconfig, 0)
	for _, p := range []pod{meshed, plain} {
		rt := p.runtimeConf()
		if _, err := cniConfig.AddNetworkList(context.Background(), list, rt); err != nil {
			t.Fatalf("ADD %s: %v", p.name, err)
		}
		t.Cleanup(func() {
			if err := cniConfig.DelNetworkList(context.Background(), list, rt); err != nil {
				t.Errorf("DEL %s: %v", p.name, err)
			}
		})
	}
	if tables := meshed.Run(t, nft, "list", "tables"); tables != "table ip meshinit\ntable ip6 meshinit\n" {
		t.Errorf("the injected pod's nftables tables are:\n%s\nwant ours alone", tables)
	}
	if rules := meshed.Run(t, nft, "list", "table", "ip", "meshinit"); !strings.Contains(rules, "chain KUMA_MESH_OUTBOUND {") || !strings.Contains(rules, "5432") {
		t.Errorf("the injected pod's table lacks the outbound chain or its excluded port:\n%s", rules)
	}
	if tables := plain.Run(t, nft, "list", "tables"); strings.Contains(tables, "meshinit") {
		t.Errorf("the pod without injection got rules:\n%s", tables)
	}
	meshed.ListenTCP(t, "sidecar-outbound", netip.MustParseAddrPort("127.0.0.1:15001"), netkit.OwnedBy(5678))
	dst := netip.MustParseAddrPort("192.0.2.1:80")
	if reply, err := meshed.DialTCP(t, dst, netkit.AsUID(1000)); err != nil || reply.Listener != "sidecar-outbound" || reply.OriginalDst != dst {
		t.Errorf("outbound TCP from the injected pod: %+v, %v", reply, err)
	}
	if err := cniConfig.CheckNetworkList(context.Background(), list, meshed.runtimeConf()); err != nil {
		t.Errorf("CHECK: %v", err)
	}
	meshed.Run(t, nft, "flush", "chain", "ip", "meshinit", "KUMA_MESH_OUTBOUND_REDIRECT")
	if err := cniConfig.CheckNetworkList(context.Background(), list, meshed.runtimeConf()); err == nil || !strings.Contains(err.Error(), "kuma-cni: pod default/meshed-nft: ipv4:") {
		t.Errorf("CHECK with a rule removed: %v", err)
	}
}

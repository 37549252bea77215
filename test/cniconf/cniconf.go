// Package cniconf gives tests the CNI configurations a runtime hands libcni: a cluster network of
// Debian's reference plugins, kuma-cni's entry as install-cni writes it, and the runtime's
// arguments for a pod.
package cniconf

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/meshinit/meshinit/test/netkit"
)

// DebianPlugins is where Debian's containernetworking-plugins puts the reference plugins.
const DebianPlugins = "/usr/lib/cni"

// ClusterNetwork is a cluster's own CNI: ptp with host-local, in 10.222.<subnet>.0/24. ptp routes
// pod addresses in the host's namespace, so tests that may run at once use subnets of their own.
func ClusterNetwork(t testing.TB, subnet int) map[string]any {
	return map[string]any{"type": "ptp", "ipMasq": false, "ipam": map[string]any{
		"type": "host-local", "dataDir": t.TempDir(),
		"ranges": []any{[]any{map[string]any{"subnet": fmt.Sprintf("10.222.%d.0/24", subnet)}}},
		"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
	}}
}

// KumaCNI is kuma-cni's entry, as install-cni chains it, reading pods through kubeconfig.
func KumaCNI(kubeconfig string) map[string]any {
	return map[string]any{"type": "kuma-cni", "log_level": "info",
		"kubernetes": map[string]any{"kubeconfig": kubeconfig, "exclude_namespaces": []string{"kube-system"}}}
}

// List is a network configuration list of plugins, as libcni reads it from a file.
func List(t testing.TB, version string, plugins ...any) *libcni.NetworkConfigList {
	t.Helper()
	data, err := json.Marshal(map[string]any{"cniVersion": version, "name": "meshinit-test", "plugins": plugins})
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// Runtime is what a runtime passes for the pod namespace/name whose network namespace is ns, on
// interface ifName.
func Runtime(ns *netkit.Namespace, namespace, name, ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: "c-" + ns.Name, NetNS: ns.Path, IfName: ifName,
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", namespace}, {"K8S_POD_NAME", name}}}
}

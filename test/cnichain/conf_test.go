package cnichain

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/cni/install/testnode"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/cniconf"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// TestConfWithoutVersion: install-cni converts a .conf that declares no cniVersion (Flannel's, in
// Kuma's tests) into a list of the highest version its plugin speaks, which it asks the plugin; the
// runtime then runs the list, kuma-cni in it, at that version.
func TestConfWithoutVersion(t *testing.T) {
	requirePlugins(t)
	env := kubeenv.Start(t)
	n := installCNIWith(t, env, binaries.Build(t, "kuma-cni"), func(n *testnode.Node) {
		// The node's plugin, in its bin dir, as the provider's DaemonSet puts it.
		data, err := os.ReadFile(filepath.Join(cniconf.DebianPlugins, "ptp"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.BinDir, "ptp"), data, 0o755); err != nil {
			t.Fatal(err)
		}
		conf := cniconf.ClusterNetwork(t, 40)
		conf["name"] = "k8s-pod-network"
		n.Provide(t, "10-ptp.conf", jsonOf(t, conf)...)
	}, "CHAINED_CNI_PLUGIN=true", "CNI_CONF_NAME=10-ptp.conf")
	createPods(t, env)
	list, err := libcni.ConfListFromFile(n.Net("10-ptp.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	if list.CNIVersion != "1.0.0" || len(list.Plugins) != 2 || list.Plugins[1].Network.Type != cni.PluginType {
		t.Fatalf("the converted list has version %q and %d plugins, want 1.0.0 (Debian's ptp's highest) and ptp then kuma-cni", list.CNIVersion, len(list.Plugins))
	}
	// kuma-cni from where install-cni copied it, ptp from the node's bin dir.
	runChain(t, libcni.NewCNIConfigWithCacheDir([]string{n.BinDir, cniconf.DebianPlugins}, t.TempDir(), nil), list, list.CNIVersion)
}

package install

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/cni/install/testnode"
	"github.com/meshinit/meshinit/test/poll"
)

func hasEntry(t *testing.T, path string) bool {
	data, err := os.ReadFile(path)
	return err == nil && conflist.HasEntry(data)
}

func TestInstallThenUninstall(t *testing.T) {
	n := testnode.New(t, "token-1")
	orig := n.Provide(t, "10-calico.conflist")
	r := start(t, n, "CNI_LOG_LEVEL=debug", "CNI_EXCLUDE_NAMESPACES=kube-system,kuma-system")
	r.waitReady(t)

	list, err := libcni.ConfListFromFile(n.Net("10-calico.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	last := list.Plugins[len(list.Plugins)-1]
	var got cni.NetConf
	if err := json.Unmarshal(last.Bytes, &got); err != nil {
		t.Fatal(err)
	}
	want := cni.Kubernetes{Kubeconfig: "/etc/cni/net.d/kuma-cni-kubeconfig", ExcludeNamespaces: []string{"kube-system", "kuma-system"}}
	if got.Type != cni.PluginType || got.LogLevel != "debug" || !cmp.Equal(got.Kubernetes, want) {
		t.Errorf("kuma-cni's entry is %s", last.Bytes)
	}

	bin := filepath.Join(n.BinDir, "kuma-cni")
	if !bytes.Equal(testnode.ReadFile(t, bin), n.BinaryContent) {
		t.Error("the binary on the host is not the image's")
	}
	if fi, err := os.Stat(bin); err != nil || fi.Mode() != 0o755 {
		t.Errorf("the binary's mode is %v (%v), want 0755", fi.Mode(), err)
	}

	kc := n.Net(KubeconfigName)
	cfg, err := clientcmd.LoadFromFile(kc)
	if err != nil {
		t.Fatal(err)
	}
	cluster := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	if cluster.Server != "https://10.96.0.1:443" || !bytes.Equal(cluster.CertificateAuthorityData, n.CA) {
		t.Errorf("kubeconfig cluster: server %q, CA %q", cluster.Server, cluster.CertificateAuthorityData)
	}
	if tok := cfg.AuthInfos[cfg.Contexts[cfg.CurrentContext].AuthInfo].Token; tok != "token-1" {
		t.Errorf("kubeconfig token %q, want token-1", tok)
	}
	if fi, err := os.Stat(kc); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the kubeconfig's mode is %v (%v), want 0600: it holds a token", fi.Mode(), err)
	}

	// Chained, kuma-cni has no configuration of its own.
	gone(t, n.Net(StandaloneConfName))

	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if got := testnode.ReadFile(t, n.Net("10-calico.conflist")); !bytes.Equal(got, orig) {
		t.Errorf("after uninstall the conflist is\n%s\nwant the original\n%s", got, orig)
	}
	gone(t, bin)
	gone(t, kc)
	if code, body := r.ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("/ready after stop: %d %q", code, body)
	}
}

func TestConfigurationAppearsLate(t *testing.T) {
	n := testnode.New(t, "token-1")
	r := start(t, n)
	poll.Until(t, "install-cni waits for a configuration", func() (bool, error) {
		_, body := r.ready()
		return strings.Contains(body, "waiting for a network configuration in "+n.NetDir), nil
	})
	if code, _ := r.ready(); code != http.StatusServiceUnavailable {
		t.Errorf("/ready says %d while nothing is installed", code)
	}
	// The binary and kubeconfig are in place already, so that a conflist is usable the moment
	// kuma-cni enters it.
	if _, err := os.Stat(filepath.Join(n.BinDir, "kuma-cni")); err != nil {
		t.Error(err)
	}
	n.Provide(t, "10-flannel.conflist")
	r.waitReady(t)
	if !hasEntry(t, n.Net("10-flannel.conflist")) {
		t.Error("kuma-cni is not in the conflist")
	}
}

func TestNamedConfigurationAppearsLate(t *testing.T) {
	n := testnode.New(t, "token-1")
	r := start(t, n, "CNI_CONF_NAME=10-calico.conflist")
	cilium := n.Provide(t, "05-cilium.conflist")
	poll.Until(t, "install-cni waits for 10-calico.conflist", func() (bool, error) {
		_, body := r.ready()
		return strings.Contains(body, "waiting for 10-calico.conflist (CNI_CONF_NAME) in "+n.NetDir+", which holds 05-cilium.conflist"), nil
	})
	n.Provide(t, "10-calico.conflist")
	r.waitReady(t)
	if !hasEntry(t, n.Net("10-calico.conflist")) {
		t.Error("kuma-cni is not in the named conflist")
	}
	if !bytes.Equal(testnode.ReadFile(t, n.Net("05-cilium.conflist")), cilium) {
		t.Error("a conflist other than the named one changed")
	}
}

func TestHealsRewrittenConflist(t *testing.T) {
	for name, rewrite := range map[string]func(n *testnode.Node, data []byte) error{
		"renamed over": func(n *testnode.Node, data []byte) error {
			n.Provide(t, "10-calico.conflist", data...)
			return nil
		},
		"written in place": func(n *testnode.Node, data []byte) error {
			return os.WriteFile(n.Net("10-calico.conflist"), data, 0o644)
		},
	} {
		t.Run(name, func(t *testing.T) {
			n := testnode.New(t, "token-1")
			orig := n.Provide(t, "10-calico.conflist")
			r := start(t, n)
			r.waitReady(t)
			installed := testnode.ReadFile(t, n.Net("10-calico.conflist"))
			for range 3 {
				if err := rewrite(n, orig); err != nil {
					t.Fatal(err)
				}
				poll.Until(t, "kuma-cni is back in the conflist", func() (bool, error) { return hasEntry(t, n.Net("10-calico.conflist")), nil })
			}
			if got := testnode.ReadFile(t, n.Net("10-calico.conflist")); !bytes.Equal(got, installed) {
				t.Errorf("healed conflist\n%s\nwant what the first install wrote\n%s", got, installed)
			}
		})
	}
}

func TestMovesToEarlierConfiguration(t *testing.T) {
	n := testnode.New(t, "token-1")
	calico := n.Provide(t, "10-calico.conflist")
	r := start(t, n)
	r.waitReady(t)
	cilium := n.Provide(t, "05-cilium.conflist")
	poll.Until(t, "kuma-cni is in 05-cilium.conflist, which the runtime uses now", func() (bool, error) {
		return hasEntry(t, n.Net("05-cilium.conflist")), nil
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"10-calico.conflist": calico, "05-cilium.conflist": cilium} {
		if !bytes.Equal(testnode.ReadFile(t, n.Net(name)), want) {
			t.Errorf("after uninstall %s is not the original", name)
		}
	}
}

func TestConvertsConfAndRestoresIt(t *testing.T) {
	n := testnode.New(t, "token-1")
	orig := n.Provide(t, "10-calico.conf")
	r := start(t, n, "CNI_CONF_NAME=10-calico.conf")
	r.waitReady(t)
	if !hasEntry(t, n.Net("10-calico.conflist")) {
		t.Fatal("kuma-cni is not in 10-calico.conflist")
	}
	gone(t, n.Net("10-calico.conf"))
	// Deleting the list the .conf became heals too: the named .conf is still kept aside.
	if err := os.Remove(n.Net("10-calico.conflist")); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "install-cni waits for the list again", func() (bool, error) { _, body := r.ready(); return strings.Contains(body, "waiting"), nil })
	n.Provide(t, "10-calico.conf", orig...)
	r.waitReady(t)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(testnode.ReadFile(t, n.Net("10-calico.conf")), orig) {
		t.Error("the .conf is not restored byte for byte")
	}
	entries, _ := os.ReadDir(n.NetDir)
	if len(entries) != 1 {
		t.Errorf("the net dir holds %d files after uninstall, want only the .conf", len(entries))
	}
}

func TestRestoresBinary(t *testing.T) {
	n := testnode.New(t, "token-1")
	n.Provide(t, "10-kindnet.conflist")
	r := start(t, n)
	r.waitReady(t)
	bin := filepath.Join(n.BinDir, "kuma-cni")
	restored := func() (bool, error) {
		data, err := os.ReadFile(bin)
		fi, _ := os.Stat(bin)
		return err == nil && bytes.Equal(data, n.BinaryContent) && fi.Mode() == 0o755, nil
	}
	if err := os.Remove(bin); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the deleted binary is back", restored)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the overwritten binary is the image's again", restored)
	if err := os.Chmod(bin, 0o644); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the binary is executable again", restored)
}

func TestRotatedTokenRewritesKubeconfig(t *testing.T) {
	n := testnode.New(t, "token-1")
	n.Provide(t, "10-aws.conflist")
	r := start(t, n)
	r.waitReady(t)
	kc := n.Net(KubeconfigName)
	if got := token(kc); got != "token-1" {
		t.Fatalf("token %q, want token-1", got)
	}
	n.RotateToken(t, "token-2\n")
	poll.Until(t, "the kubeconfig carries the rotated token", func() (bool, error) { return token(kc) == "token-2", nil })
}

func TestKubeconfigModeRestored(t *testing.T) {
	n := testnode.New(t, "token-1")
	n.Provide(t, "10-calico.conflist")
	r := start(t, n)
	r.waitReady(t)
	kc := n.Net(KubeconfigName)
	if err := os.Chmod(kc, 0o644); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the kubeconfig is 0600 again", func() (bool, error) {
		fi, err := os.Stat(kc)
		return err == nil && fi.Mode().Perm() == 0o600, nil
	})
	r.settle(t)
	if got := r.logged("wrote kuma-cni's kubeconfig"); got != 2 {
		t.Errorf("the kubeconfig was written %d times, want twice: at start and once after the chmod", got)
	}
}

func TestStandalone(t *testing.T) {
	n := testnode.New(t, "token-1")
	orig := n.Provide(t, "10-calico.conflist")
	r := start(t, n, "CHAINED_CNI_PLUGIN=false", "CNI_LOG_LEVEL=debug", "CNI_EXCLUDE_NAMESPACES=kube-system,kuma-system")
	r.waitReady(t)
	if _, body := r.ready(); body != "installed\n" {
		t.Errorf("/ready body %q", body)
	}
	for _, path := range []string{filepath.Join(n.BinDir, "kuma-cni"), n.Net(KubeconfigName)} {
		if _, err := os.Stat(path); err != nil {
			t.Error(err)
		}
	}

	// kuma-cni's own configuration, named kuma-cni for Multus to find, with the chained entry's settings.
	path := n.Net(StandaloneConfName)
	want := `{
  "cniVersion": "0.3.1",
  "name": "kuma-cni",
  "type": "kuma-cni",
  "log_level": "debug",
  "log_socket": "/var/run/kuma-cni/kuma-cni.sock",
  "kubernetes": {
    "kubeconfig": "/etc/cni/net.d/kuma-cni-kubeconfig",
    "exclude_namespaces": [
      "kube-system",
      "kuma-system"
    ]
  }
}
`
	data := testnode.ReadFile(t, path)
	if got := string(data); got != want {
		t.Errorf("%s is\n%s\nwant\n%s", path, got, want)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode() != 0o644 {
		t.Errorf("its mode is %v (%v), want 0644", fi.Mode(), err)
	}
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil || conf.Network.Name != "kuma-cni" || conf.Network.Type != cni.PluginType {
		t.Errorf("libcni reads it as %+v, %v", conf, err)
	}

	// Its own write, seen by the watch, changes nothing.
	fi, _ := os.Stat(path)
	r.settle(t)
	if now, _ := os.Stat(path); !os.SameFile(fi, now) {
		t.Error("the configuration was written again though nothing changed")
	}
	if got := r.logged("wrote kuma-cni's network configuration for Multus"); got != 1 {
		t.Errorf("the write was logged %d times, want once", got)
	}

	// Rewritten, the conflist stays without kuma-cni.
	n.Provide(t, "10-calico.conflist", orig...)
	n.Provide(t, "05-cilium.conflist")
	r.settle(t)
	cilium := testnode.ReadFile(t, n.Net("05-cilium.conflist"))
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(testnode.ReadFile(t, n.Net("10-calico.conflist")), orig) || hasEntry(t, n.Net("05-cilium.conflist")) {
		t.Error("standalone mode touched a conflist")
	}
	gone(t, path)
	gone(t, filepath.Join(n.BinDir, "kuma-cni"))
	gone(t, n.Net(KubeconfigName))
	if !bytes.Equal(testnode.ReadFile(t, n.Net("05-cilium.conflist")), cilium) {
		t.Error("uninstall touched a conflist")
	}
	if entries, _ := os.ReadDir(n.NetDir); len(entries) != 2 {
		t.Errorf("the net dir holds %d files after uninstall, want only the two conflists", len(entries))
	}
}

func TestStandaloneHealsItsConfiguration(t *testing.T) {
	n := testnode.New(t, "token-1")
	r := start(t, n, "CHAINED_CNI_PLUGIN=false", "CNI_CONF_NAME=00-kuma-cni.json")
	r.waitReady(t)
	path := n.Net("00-kuma-cni.json")
	written := testnode.ReadFile(t, path)
	restored := func() (bool, error) {
		data, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		return err == nil && bytes.Equal(data, written) && fi.Mode() == 0o644, nil
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the deleted configuration is back", restored)
	edited := bytes.Replace(written, []byte(`"type": "kuma-cni",`), []byte(`"type": "kuma-cni", "log_level": "error",`), 1)
	if err := os.WriteFile(path, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the rewritten configuration is install-cni's again", restored)
	n.Provide(t, "00-kuma-cni.json", []byte("{")...)
	poll.Until(t, "the configuration replaced by a broken file is back", restored)
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the configuration is readable again", restored)
}

// TestStandaloneLeavesOthersConfigurationAlone: a CNI_CONF_NAME that names another plugin's file
// (one meant for chained mode, say) is not written over, nor removed.
func TestStandaloneLeavesOthersConfigurationAlone(t *testing.T) {
	n := testnode.New(t, "token-1")
	calico := n.Provide(t, "10-calico.conf")
	r := start(t, n, "CHAINED_CNI_PLUGIN=false", "CNI_CONF_NAME=10-calico.conf")
	want := n.Net("10-calico.conf") + ` configures another plugin (type "calico"), which kuma-cni does not write over; ` +
		`accepted: a CNI_CONF_NAME of kuma-cni's own, such as kuma-cni.conf`
	poll.Until(t, "/ready says why", func() (bool, error) {
		code, body := r.ready()
		return code == http.StatusServiceUnavailable && strings.Contains(body, want), nil
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(testnode.ReadFile(t, n.Net("10-calico.conf")), calico) {
		t.Error("another plugin's configuration changed")
	}
}

func TestRefusedConflistLeftAlone(t *testing.T) {
	n := testnode.New(t, "token-1")
	broken := []byte("{\n  \"name\": \"k8s-pod-network\",\n  \"cniVersion\": \"0.3.1\",\n  \"plugins\": [\n    {\"type\": \"calico\"},\n  ]\n}\n")
	n.Provide(t, "10-calico.conflist", broken...)
	r := start(t, n)
	poll.Until(t, "/ready names the file and its problem", func() (bool, error) {
		code, body := r.ready()
		return code == http.StatusServiceUnavailable &&
			strings.Contains(body, n.Net("10-calico.conflist")+": is not valid JSON: invalid character ']' looking for beginning of value (line 6, column 3)"), nil
	})
	// More passes over the same problem, as its retries make, change and log nothing more.
	r.settle(t)
	if !bytes.Equal(testnode.ReadFile(t, n.Net("10-calico.conflist")), broken) {
		t.Error("the refused conflist changed")
	}
	if n := r.logged("not ready: " + n.Net("10-calico.conflist")); n != 1 {
		t.Errorf("the problem was logged %d times, want once (retries repeat nothing)", n)
	}
	n.Provide(t, "10-calico.conflist")
	r.waitReady(t)
}

func TestOwnWritesDoNotLoop(t *testing.T) {
	n := testnode.New(t, "token-1")
	n.Provide(t, "10-calico.conflist")
	r := start(t, n)
	r.waitReady(t)
	fi, _ := os.Stat(n.Net("10-calico.conflist"))
	r.settle(t)
	if now, _ := os.Stat(n.Net("10-calico.conflist")); !os.SameFile(fi, now) {
		t.Error("the conflist was written again though nothing changed")
	}
	for _, msg := range []string{"added kuma-cni", "wrote kuma-cni's kubeconfig", "copied the kuma-cni binary"} {
		if got := r.logged(msg); got != 1 {
			t.Errorf("%q logged %d times, want once", msg, got)
		}
	}
}

func TestReadyEndpoint(t *testing.T) {
	n := testnode.New(t, "token-1")
	r := start(t, n)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{http.MethodGet, "/ready", http.StatusServiceUnavailable},
		{http.MethodPost, "/ready", http.StatusMethodNotAllowed},
		{http.MethodGet, "/healthz", http.StatusNotFound},
	} {
		rec := httpRecorder(r, tc.method, tc.path)
		if rec != tc.code {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, rec, tc.code)
		}
	}
	n.Provide(t, "15-azure-swift-overlay.conflist")
	r.waitReady(t)
}

func TestNewChecksPaths(t *testing.T) {
	n := testnode.New(t, "token-1")
	missing := filepath.Join(t.TempDir(), "missing")
	cfg, err := LoadConfig(n.Env("MOUNTED_CNI_NET_DIR="+missing, "MOUNTED_CNI_BIN_DIR="+n.Binary,
		"SERVICE_ACCOUNT_DIR="+missing, "KUMA_CNI_BINARY="+n.BinDir))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, nil)
	for _, want := range []string{
		`MOUNTED_CNI_NET_DIR: "` + missing + `" is not a directory (it does not exist)`,
		`MOUNTED_CNI_BIN_DIR: "` + n.Binary + `" is not a directory`,
		`SERVICE_ACCOUNT_DIR: "` + missing + `" is not a directory`,
		`KUMA_CNI_BINARY: "` + n.BinDir + `" is not a file`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v\nwant it to say %s", err, want)
		}
	}
}

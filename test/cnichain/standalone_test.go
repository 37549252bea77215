package cnichain

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/cni/install"
	"github.com/meshinit/meshinit/cni/install/testnode"
	"github.com/meshinit/meshinit/test/background"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/cniconf"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/poll"
)

// TestStandaloneInstallsThePodsRules runs kuma-cni as Multus runs an extra attachment: from the
// network configuration install-cni writes in standalone mode, alone (no previous result), after
// the cluster's network has set the pod up. install-cni runs for real, so kuma-cni also reaches
// the API server with the kubeconfig it writes, a service account's token.
func TestStandaloneInstallsThePodsRules(t *testing.T) {
	requirePlugins(t)
	env := kubeenv.Start(t)
	n := installCNI(t, env, binaries.Build(t, "kuma-cni"))
	createPods(t, env)

	// Multus finds the file by its name field, and converts it into a list to run it.
	conf, err := libcni.NetworkPluginConfFromBytes(testnode.ReadFile(t, n.Net(install.StandaloneConfName)))
	if err != nil {
		t.Fatal(err)
	}
	if conf.Network.Name != "kuma-cni" || conf.Network.Type != "kuma-cni" {
		t.Fatalf("name %q, type %q; want kuma-cni, kuma-cni", conf.Network.Name, conf.Network.Type)
	}
	//lint:ignore SA1019 Multus converts a single-plugin file with it, and libcni has no successor.
	kumaCNI, err := libcni.ConfListFromConf(conf)
	if err != nil {
		t.Fatal(err)
	}
	cluster := cniconf.List(t, "0.3.1", cniconf.ClusterNetwork(t, 10))
	// kuma-cni runs from where install-cni copied it.
	cniConfig := libcni.NewCNIConfigWithCacheDir([]string{n.BinDir, cniconf.DebianPlugins}, t.TempDir(), nil)

	meshed, plain := newPods(t)
	for _, p := range []pod{meshed, plain} {
		rt := p.runtimeConf()
		if _, err := cniConfig.AddNetworkList(context.Background(), cluster, rt); err != nil {
			t.Fatalf("ADD %s to the cluster network: %v", p.name, err)
		}
		extra := *rt
		extra.IfName = "net1"
		result, err := cniConfig.AddNetworkList(context.Background(), kumaCNI, &extra)
		if err != nil {
			t.Fatalf("ADD %s to kuma-cni: %v", p.name, err)
		}
		t.Cleanup(func() {
			for _, del := range []struct {
				list *libcni.NetworkConfigList
				rt   *libcni.RuntimeConf
			}{{kumaCNI, &extra}, {cluster, rt}} {
				if err := cniConfig.DelNetworkList(context.Background(), del.list, del.rt); err != nil {
					t.Errorf("DEL %s from %s: %v", p.name, del.list.Name, err)
				}
			}
		})
		if out, _ := json.Marshal(result); strings.Contains(string(out), "10.222.") {
			t.Errorf("kuma-cni, alone, answered with another network's result: %s", out)
		}
	}
	checkCapture(t, meshed, plain)
}

// installCNI runs install-cni in standalone mode, until the test ends, on a node whose API server
// is env's and whose net dir is the same path on the host and in the container, with kumaCNI as
// the image's binary; it returns the node once install-cni is ready.
func installCNI(t *testing.T, env *kubeenv.Env, kumaCNI string) *testnode.Node {
	t.Helper()
	return installCNIWith(t, env, kumaCNI, nil, "CHAINED_CNI_PLUGIN=false")
}

// installCNIWith runs install-cni as installCNI does, with the extra environment, after prepare
// laid out what the node holds before it starts.
func installCNIWith(t *testing.T, env *kubeenv.Env, kumaCNI string, prepare func(*testnode.Node), extra ...string) *testnode.Node {
	t.Helper()
	token := serviceAccountToken(t, env)
	n := testnode.New(t, token)
	n.CA = env.Config.CAData
	n.RotateToken(t, token)
	if prepare != nil {
		prepare(n)
	}
	u, err := url.Parse(env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := install.LoadConfig(n.Env(append([]string{"CNI_NET_DIR=" + n.NetDir, "KUMA_CNI_BINARY=" + kumaCNI,
		"KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + u.Port()}, extra...)...))
	if err != nil {
		t.Fatal(err)
	}
	in, err := install.New(cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		t.Fatal(err)
	}
	background.Run(t, "install-cni", in.Run)
	var rec *httptest.ResponseRecorder
	err = poll.Wait(t.Context(), func() (bool, error) {
		rec = httptest.NewRecorder()
		in.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
		return rec.Code == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("install-cni is not ready (%v): %s", err, rec.Body)
	}
	return n
}

// serviceAccountToken is a token of a service account that may read pods, as the kuma-cni
// DaemonSet's may.
func serviceAccountToken(t *testing.T, env *kubeenv.Env) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kuma-cni", Namespace: "default"}}
	for _, obj := range []client.Object{
		sa,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "kuma-cni"},
			Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "kuma-cni"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kuma-cni"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: sa.Namespace}}},
	} {
		if err := env.Client.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	req := &authenticationv1.TokenRequest{}
	if err := env.Client.SubResource("token").Create(t.Context(), sa, req); err != nil {
		t.Fatal(err)
	}
	return req.Status.Token
}

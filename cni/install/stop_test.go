package install

import (
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/cni/install/testnode"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/netkit"
)

// TestStopKeepsOrRemoves stops install-cni as kubelet does in each case that stops a DaemonSet's
// pod, against a real API server: kuma-cni stays installed when the DaemonSet goes on (a rollout,
// an eviction), and is taken out when it is going (deleted, being deleted, made anew, no longer
// selecting the node) or install-cni's account is gone.
func TestStopKeepsOrRemoves(t *testing.T) {
	env := kubeenv.Start(t)
	k := &stopCluster{env: env}
	for i, tc := range []struct {
		name string
		// before runs before the stop, as what stops the pod happens.
		before func(t *testing.T, ns string, ds *appsv1.DaemonSet)
		stays  bool
		says   string
	}{
		{name: "a rollout", stays: true, says: "is there and selects this node"},
		{name: "the DaemonSet deleted", says: "is deleted", before: func(t *testing.T, ns string, ds *appsv1.DaemonSet) {
			k.delete(t, ds, client.PropagationPolicy(metav1.DeletePropagationBackground))
		}},
		{name: "the DaemonSet being deleted", says: "is being deleted", before: func(t *testing.T, ns string, ds *appsv1.DaemonSet) {
			// Foreground: the DaemonSet waits for its pods (with no garbage collector here, for good).
			k.delete(t, ds, client.PropagationPolicy(metav1.DeletePropagationForeground))
		}},
		{name: "the DaemonSet made anew", says: "was deleted and made anew", before: func(t *testing.T, ns string, ds *appsv1.DaemonSet) {
			k.delete(t, ds, client.PropagationPolicy(metav1.DeletePropagationBackground))
			k.daemonSet(t, ns, map[string]string{"kubernetes.io/os": "linux"})
		}},
		{name: "the node no longer selected", says: "no longer selects node", before: func(t *testing.T, ns string, ds *appsv1.DaemonSet) {
			patch := client.MergeFrom(ds.DeepCopy())
			ds.Spec.Template.Spec.NodeSelector = map[string]string{"kubernetes.io/os": "windows"}
			if err := env.Client.Patch(t.Context(), ds, patch); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "the account deleted", says: "the API server refuses install-cni's account", before: func(t *testing.T, ns string, _ *appsv1.DaemonSet) {
			k.delete(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "install-cni", Namespace: ns}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := fmt.Sprintf("stop-%d", i)
			node := fmt.Sprintf("node-%d", i)
			n, r := k.start(t, ns, node)
			r.waitReady(t)
			ds := &appsv1.DaemonSet{}
			if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "cni"}, ds); err != nil {
				t.Fatal(err)
			}
			if tc.before != nil {
				tc.before(t, ns, ds)
			}
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			installed := hasEntry(t, n.Net("10-calico.conflist"))
			binary := fileExists(filepath.Join(n.BinDir, "kuma-cni"))
			kubeconfig := fileExists(n.Net(KubeconfigName))
			if installed != tc.stays || binary != tc.stays || kubeconfig != tc.stays {
				t.Errorf("after the stop: entry %v, binary %v, kubeconfig %v; want all %v", installed, binary, kubeconfig, tc.stays)
			}
			if !strings.Contains(r.logs.String(), tc.says) {
				t.Errorf("install-cni's log does not say %q", tc.says)
			}
		})
	}

	t.Run("the API server unreachable", func(t *testing.T) {
		n := testnode.New(t, "token")
		// A CA that parses, of a server that is gone.
		srv := httptest.NewTLSServer(nil)
		n.CA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
		srv.Close()
		n.RotateToken(t, "token")
		n.Provide(t, "10-calico.conflist")
		r := start(t, n, "POD_NAME=cni-x", "POD_NAMESPACE=kube-system", "NODE_NAME=node", "CNI_REPAIR_ENABLED=false",
			"KUBERNETES_SERVICE_HOST=127.0.0.1", fmt.Sprintf("KUBERNETES_SERVICE_PORT=%d", netkit.FreePort(t)))
		r.waitReady(t)
		begin := time.Now()
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		if !hasEntry(t, n.Net("10-calico.conflist")) || !strings.Contains(r.logs.String(), "kuma-cni stays installed: the API server could not say") {
			t.Errorf("kuma-cni was taken out though nobody could say the DaemonSet is going")
		}
		if took := time.Since(begin); took > stopTimeout+2*time.Second {
			t.Errorf("the stop took %v, more than stopTimeout %v and the uninstall", took, stopTimeout)
		}
	})
}

// stopCluster makes what a DaemonSet's pod is made of in a real API server.
type stopCluster struct{ env *kubeenv.Env }

// start makes namespace ns with a DaemonSet "cni" and its pod "cni-pod" on node, an account for
// install-cni with the chart's rights to tell, and runs install-cni as that pod.
func (k *stopCluster) start(t *testing.T, ns, node string) (*testnode.Node, *running) {
	t.Helper()
	c := k.env.Client
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"kubernetes.io/os": "linux"}}},
	} {
		if err := c.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	ds := k.daemonSet(t, ns, map[string]string{"kubernetes.io/os": "linux"})
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "cni-pod", Namespace: ns, OwnerReferences: []metav1.OwnerReference{{
		APIVersion: "apps/v1", Kind: "DaemonSet", Name: ds.Name, UID: ds.UID, Controller: ptr.To(true)}}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "install-cni", Image: "kuma-cni"}}}}
	if err := c.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	token := k.account(t, ns)
	n := testnode.New(t, token)
	n.CA = k.env.Config.CAData
	n.RotateToken(t, token)
	n.Provide(t, "10-calico.conflist")
	u, err := url.Parse(k.env.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	return n, start(t, n, "POD_NAME="+pod.Name, "POD_NAMESPACE="+ns, "NODE_NAME="+node, "CNI_REPAIR_ENABLED=false",
		"KUBERNETES_SERVICE_HOST="+u.Hostname(), "KUBERNETES_SERVICE_PORT="+u.Port())
}

func (k *stopCluster) daemonSet(t *testing.T, ns string, nodeSelector map[string]string) *appsv1.DaemonSet {
	t.Helper()
	labels := map[string]string{"app": "cni"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "cni", Namespace: ns}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
			NodeSelector: nodeSelector, Containers: []corev1.Container{{Name: "install-cni", Image: "kuma-cni"}}}},
	}}
	if err := k.env.Client.Create(t.Context(), ds); err != nil {
		t.Fatal(err)
	}
	return ds
}

// account is a token of install-cni's account in ns, with the rights the chart grants it to tell
// an upgrade from an uninstall.
func (k *stopCluster) account(t *testing.T, ns string) string {
	t.Helper()
	c := k.env.Client
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "install-cni", Namespace: ns}}
	for _, obj := range []client.Object{
		sa,
		&rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "install-cni-" + ns}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"pods", "nodes"}, Verbs: []string{"get"}},
			{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, Verbs: []string{"get"}},
		}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "install-cni-" + ns},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "install-cni-" + ns},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa.Name, Namespace: ns}}},
	} {
		if err := c.Create(t.Context(), obj); err != nil {
			t.Fatal(err)
		}
	}
	req := &authenticationv1.TokenRequest{}
	if err := c.SubResource("token").Create(t.Context(), sa, req); err != nil {
		t.Fatal(err)
	}
	return req.Status.Token
}

func (k *stopCluster) delete(t *testing.T, obj client.Object, opts ...client.DeleteOption) {
	t.Helper()
	if err := k.env.Client.Delete(t.Context(), obj, opts...); err != nil {
		t.Fatal(err)
	}
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

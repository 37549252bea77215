package chart

import (
	"crypto/tls"
	"crypto/x509"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr/testr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/cni/multus"
	"github.com/meshinit/meshinit/cni/plugin"
	"github.com/meshinit/meshinit/cni/taint"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/background"
	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/webhook"
)

// as is admin's rest.Config impersonating a service account, with the groups the API server
// gives service accounts.
func as(admin *rest.Config, namespace, name string) *rest.Config {
	c := rest.CopyConfig(admin)
	c.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return c
}

// TestInjectorRunsWithTheChartsRights runs the injector, in CNI mode with the taint controller,
// as the chart's service account with only the rights the chart grants it, on the settings the
// chart renders for it: it must start, serve the chart's certificate, keep Multus's definition in
// a meshed namespace, and taint a node until a ready kuma-cni pod runs there.
func TestInjectorRunsWithTheChartsRights(t *testing.T) {
	e := shared.Get(t)
	const release = "rights"
	objs := install(t.Context(), t, chartcases.Case{Name: "rights", Set: []string{"cni.enabled=true", "cni.chained=true"}}, release)
	environ, err := charts.InjectorEnvironment(objs)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load(environ)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.NodeTaintController.Enabled || !cfg.Injector.CNIEnabled {
		t.Fatalf("the render does not enable CNI mode and the taint controller: %+v", cfg)
	}
	// The webhook serves the certificate the chart generated, as the Deployment mounts it.
	certDir := t.TempDir()
	writeCertificate(t, objs, release, certDir)
	port := uint16(netkit.FreePort(t))
	cfg.AdmissionServer.Port, cfg.AdmissionServer.CertDir = port, certDir

	mgr, err := webhook.NewManager(as(e.Config, release, "rights-meshinit-injector"), webhook.ServerOptions{
		Config: cfg, Host: "127.0.0.1", MetricsAddr: "0", HealthAddr: "0", Log: testr.New(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	background.Run(t, "the injector", mgr.Start)

	// Multus's definition, in every namespace labelled for the mesh.
	meshed := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rights-meshed", Labels: map[string]string{api.LabelSidecarInjection: "enabled"}}}
	if err := e.Client.Create(t.Context(), meshed); err != nil {
		t.Fatal(err)
	}
	nad := &metav1.PartialObjectMetadata{}
	nad.SetGroupVersionKind(schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"})
	err = poll.Wait(t.Context(), func() (bool, error) {
		err := e.Client.Get(t.Context(), client.ObjectKey{Namespace: meshed.Name, Name: multus.NetworkName}, nad)
		return err == nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Errorf("no NetworkAttachmentDefinition %s in %s: %v", multus.NetworkName, meshed.Name, err)
	}

	// Labelled as kubelet labels it: the DaemonSet, hence the taint controller, covers Linux nodes.
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rights-node", Labels: map[string]string{"kubernetes.io/os": "linux"}}}
	if err := e.Client.Create(t.Context(), node); err != nil {
		t.Fatal(err)
	}
	waitTaint(t, e.Client, node.Name, true)

	readyCNIPod(t, e.Client, cfg.NodeTaintController, "rights-cni", node.Name)
	waitTaint(t, e.Client, node.Name, false)

	// The API server reaches the injector by its Service's name and trusts the webhook's caBundle.
	mwc := chartcases.Find[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", "")
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(mwc.Webhooks[0].ClientConfig.CABundle)
	var last error
	err = poll.Wait(t.Context(), func() (bool, error) {
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))),
			&tls.Config{RootCAs: roots, ServerName: "rights-meshinit-injector.rights.svc"})
		if err != nil {
			last = err
			return false, nil
		}
		return true, conn.Close()
	})
	if err != nil {
		t.Errorf("the webhook does not serve the chart's certificate: %v; TLS to the webhook: %v", err, last)
	}
}

// readyCNIPod creates a pod the taint controller takes for the CNI DaemonSet's (its namespace and
// app label), on the node nodeName, and reports it running and Ready, as a kubelet would.
func readyCNIPod(t *testing.T, c client.Client, tc config.NodeTaintController, name, nodeName string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: tc.CNINamespace, Name: name, Labels: map[string]string{"app": tc.CNIApp}},
		Spec: corev1.PodSpec{NodeName: nodeName, Containers: []corev1.Container{{Name: "install-cni", Image: "kuma-cni"}},
			AutomountServiceAccountToken: ptr.To(false)},
	}
	if err := c.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
	if err := c.Status().Update(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
}

// waitTaint waits until the node has (or has not) the taint controller's taint.
func waitTaint(t *testing.T, c client.Client, name string, want bool) {
	t.Helper()
	err := poll.Wait(t.Context(), func() (bool, error) {
		var node corev1.Node
		if err := c.Get(t.Context(), client.ObjectKey{Name: name}, &node); err != nil {
			return false, err
		}
		has := slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool {
			return t.Key == settings.NodeTaintControllerTaintKey.Default && t.Effect == taint.Effect
		})
		return has == want, nil
	})
	if err != nil {
		t.Fatalf("node %s: taint %s wanted %v: %v", name, settings.NodeTaintControllerTaintKey.Default, want, err)
	}
}

// TestCNIAccountRights: the chart's CNI account, which kuma-cni and install-cni share, lets kuma-cni
// read the pod it sets up; install-cni read its pod, its own DaemonSet and nodes (to tell a rollout
// from an uninstall), and, with the repair on (the default), watch pods, delete them, patch their
// status and record events; nothing else. With the repair off, none of the repair's rights.
func TestCNIAccountRights(t *testing.T) {
	e := shared.Get(t)
	for _, tc := range []struct {
		release string
		repair  bool
	}{{"cni-rights", true}, {"cni-rights-norepair", false}} {
		t.Run(tc.release, func(t *testing.T) {
			install(t.Context(), t, chartcases.Case{Name: tc.release, Set: []string{"cni.enabled=true",
				"cni.repair.enabled=" + strconv.FormatBool(tc.repair)}}, tc.release)
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: tc.release, Name: "app"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}},
					AutomountServiceAccountToken: ptr.To(false)},
			}
			if err := e.Client.Create(t.Context(), pod); err != nil {
				t.Fatal(err)
			}
			cni := as(e.Config, "kube-system", tc.release+"-meshinit-cni")

			// The plugin's own lookup, through a kubeconfig as install-cni writes one.
			if _, err := pluginAs(t, cni).Pod(t.Context(), tc.release, "app"); err != nil {
				t.Errorf("kuma-cni cannot read the pod it sets up: %v", err)
			}
			// An account without the right is refused, and kuma-cni gives up at once: no retry can help.
			_, err := pluginAs(t, as(e.Config, "kube-system", "default")).Pod(t.Context(), tc.release, "app")
			if err == nil || !strings.Contains(err.Error(), "the API server refused to read the pod: 403 Forbidden") ||
				strings.Contains(err.Error(), "attempts") {
				t.Errorf("a lookup without the right: %v", err)
			}

			c, err := client.New(cni, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{GenerateName: "cni-rights-"}}
			if err := e.Client.Create(ctx, node); err != nil {
				t.Fatal(err)
			}
			allowed := map[string]error{
				"get its DaemonSet": c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: tc.release + "-meshinit-cni"}, &appsv1.DaemonSet{}),
				"get nodes":         c.Get(ctx, client.ObjectKeyFromObject(node), &corev1.Node{}),
			}
			repairs := map[string]error{
				"list pods":          c.List(ctx, &corev1.PodList{}, client.MatchingFields{"spec.nodeName": node.Name}),
				"patch a pod status": c.Status().Patch(ctx, pod.DeepCopy(), client.RawPatch(types.StrategicMergePatchType, []byte(`{"status":{"conditions":[{"type":"kuma.io/TrafficCaptured","status":"False"}]}}`))),
				"create events": c.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{GenerateName: "app.", Namespace: tc.release},
					InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: tc.release, Name: "app"}, Reason: "ValidationFailed", Type: corev1.EventTypeWarning}),
				"delete pods": c.Delete(ctx, pod.DeepCopy()),
			}
			forbidden := map[string]error{
				"get secrets":          c.Get(ctx, client.ObjectKey{Namespace: tc.release, Name: tc.release + "-meshinit-injector-tls"}, &corev1.Secret{}),
				"patch nodes":          c.Patch(ctx, node.DeepCopy(), client.RawPatch("application/merge-patch+json", []byte(`{}`))),
				"get other DaemonSets": c.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "kube-proxy"}, &appsv1.DaemonSet{}),
			}
			if tc.repair {
				maps.Copy(allowed, repairs)
			} else {
				maps.Copy(forbidden, repairs)
			}
			for what, err := range allowed {
				if apierrors.IsForbidden(err) {
					t.Errorf("the CNI account may not %s: %v", what, err)
				}
			}
			for what, err := range forbidden {
				if !apierrors.IsForbidden(err) {
					t.Errorf("the CNI account may %s: %v", what, err)
				}
			}
		})
	}
}

// pluginAs is kuma-cni's API client with a kubeconfig as install-cni writes one, here with admin's
// credentials acting as the account of cfg.
func pluginAs(t *testing.T, cfg *rest.Config) *plugin.APIServer {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kuma-cni-kubeconfig")
	if err := clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{"c": {Server: cfg.Host, CertificateAuthorityData: cfg.CAData}},
		AuthInfos: map[string]*clientcmdapi.AuthInfo{"c": {ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData,
			Impersonate: cfg.Impersonate.UserName, ImpersonateGroups: cfg.Impersonate.Groups}},
		Contexts:       map[string]*clientcmdapi.Context{"c": {Cluster: "c", AuthInfo: "c"}},
		CurrentContext: "c",
	}, kubeconfig); err != nil {
		t.Fatal(err)
	}
	api, err := plugin.NewAPIServer(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// writeCertificate writes the injector's certificate the chart generated into dir, as the
// Deployment mounts it.
func writeCertificate(t *testing.T, objs []*unstructured.Unstructured, release, dir string) {
	t.Helper()
	secret := chartcases.Find[corev1.Secret](t, objs, "Secret", release+"-meshinit-injector-tls")
	for _, key := range []string{"tls.crt", "tls.key"} {
		if err := os.WriteFile(filepath.Join(dir, key), secret.Data[key], 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

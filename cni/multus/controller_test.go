package multus

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/go-logr/logr/testr"
	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/background"
	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/crds"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/logbuf"
	"github.com/meshinit/meshinit/test/poll"
)

var cniMode = config.Injector{CNIEnabled: true}

// TestController runs the controller against a real API server: without Multus's CRD, with CNI
// mode off, as the cluster's admin, and as a service account with no more rights than the chart
// grants the injector.
func TestController(t *testing.T) {
	env := kubeenv.Start(t)
	// The cache's informers log through controller-runtime's global logger, which otherwise
	// complains, with a stack trace, that it was never set. Not testr: it outlives this test.
	log.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{}))
	k := &cluster{c: env.Client}

	t.Run("without Multus's CRD", func(t *testing.T) {
		logs := &logbuf.Buffer{}
		on, err := Enabled(env.Config, cniMode, logs.Logger())
		if err != nil || on {
			t.Fatalf("Enabled = %v, %v; want false: the API server does not serve the kind", on, err)
		}
		want := "NetworkAttachmentDefinitions will not be created: Multus's CRD is not installed " +
			"(the API server does not serve k8s.cni.cncf.io/v1 network-attachment-definitions)"
		if got := logs.String(); strings.Count(got, want) != 1 {
			t.Errorf("the log says\n%s\nwant once: %s", got, want)
		}
		// The manager, built as the injector builds it, starts with nothing registered.
		startManager(t, env.Config, cniMode)
	})

	crds.Install(t, env.Config, crds.NetworkAttachmentDefinition())

	t.Run("CNI mode off", func(t *testing.T) {
		if on, err := Enabled(&rest.Config{Host: "https://127.0.0.1:1"}, config.Injector{}, logr.Discard()); on || err != nil {
			t.Errorf("Enabled = %v, %v; want false without asking the API server", on, err)
		}
		// Off, Setup registers nothing with the manager, so nothing will ever create a
		// definition: a namespace watched for a while would only show that nothing came yet.
		mgr := &registrations{Manager: kubeenv.Manager(t, env.Config, CacheOptions(false))}
		if err := Setup(mgr, false); err != nil {
			t.Fatal(err)
		}
		if len(mgr.added) > 0 {
			t.Errorf("with CNI mode off Setup registered %d controllers or other runnables with the manager", len(mgr.added))
		}
	})

	t.Run("as the cluster's admin", func(t *testing.T) {
		startManager(t, env.Config, cniMode)
		t.Run("labelled namespaces", k.labelledNamespaces)
		t.Run("labelled later", k.labelledLater)
		t.Run("deleted definition", k.deletedDefinition)
		t.Run("operator's definition", k.operatorsDefinition)
	})

	t.Run("with the chart's rights only", func(t *testing.T) {
		injector := serviceAccount(t, env, "kuma-system", "kuma-injector")
		startManager(t, injector, cniMode)
		k.namespace(t, "least-rights", "enabled")
		d := k.waitDefinition(t, "least-rights")
		// Deleted, it comes back: the watch works too, not only the cache's first list.
		if err := env.Client.Delete(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		d = k.waitRecreated(t, d)
		// The API server enforces the rights, which cover neither changing nor deleting one.
		sa, err := client.New(injector, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := sa.Delete(t.Context(), d); !apierrors.IsForbidden(err) {
			t.Errorf("deleting as the service account: %v; want forbidden", err)
		}
		d.SetLabels(map[string]string{"changed": "true"})
		if err := sa.Update(t.Context(), d); !apierrors.IsForbidden(err) {
			t.Errorf("updating as the service account: %v; want forbidden", err)
		}
	})
}

// labelledNamespaces: a namespace labelled with any value gets the definition, with an empty spec
// and the managed-by label; an unlabelled one gets none.
func (k *cluster) labelledNamespaces(t *testing.T) {
	k.namespace(t, "unlabelled", "")
	for _, value := range []string{"enabled", "disabled", "true"} {
		ns := "labelled-" + value
		k.namespace(t, ns, value)
		d := k.waitDefinition(t, ns)
		if got := d.GetLabels(); !cmp.Equal(got, map[string]string{"app.kubernetes.io/managed-by": "meshinit"}) {
			t.Errorf("%s: labels %v", ns, got)
		}
		if spec, ok := d.Object["spec"].(map[string]any); !ok || len(spec) != 0 {
			t.Errorf("%s: spec %v, want empty: Multus then reads the node's file", ns, d.Object["spec"])
		}
	}
	// The namespaces' informer delivered "unlabelled" before the others, whose definitions exist.
	k.absent(t, "unlabelled")
}

// labelledLater: labelling a namespace creates its definition.
func (k *cluster) labelledLater(t *testing.T) {
	k.namespace(t, "later", "")
	// Once a labelled namespace created after it has its definition, the controller has handled
	// "later" too: the namespaces' informer delivers in order, and the controller's one worker
	// takes its requests in the order they came.
	k.namespace(t, "later-sentinel", "enabled")
	k.waitDefinition(t, "later-sentinel")
	k.absent(t, "later")
	k.label(t, "later")
	k.waitDefinition(t, "later")
}

// deletedDefinition: a definition deleted while its namespace is labelled is created again.
func (k *cluster) deletedDefinition(t *testing.T) {
	k.namespace(t, "deleted", "enabled")
	d := k.waitDefinition(t, "deleted")
	if err := k.c.Delete(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	k.waitRecreated(t, d)
}

// operatorsDefinition: an operator's own kuma-cni definition, with a configuration, is left as it
// is when its namespace is labelled.
func (k *cluster) operatorsDefinition(t *testing.T) {
	k.namespace(t, "operators", "")
	theirs := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"config": `{"cniVersion":"0.3.1","type":"kuma-cni"}`}}}
	theirs.SetGroupVersionKind(definitionKind)
	theirs.SetNamespace("operators")
	theirs.SetName(NetworkName)
	if err := k.c.Create(t.Context(), theirs); err != nil {
		t.Fatal(err)
	}
	k.label(t, "operators")
	// Once a namespace labelled after it has its definition, "operators" was reconciled too.
	k.namespace(t, "operators-sentinel", "enabled")
	k.waitDefinition(t, "operators-sentinel")
	got, err := k.get(t.Context(), "operators")
	if err != nil {
		t.Fatal(err)
	}
	if got.GetResourceVersion() != theirs.GetResourceVersion() {
		t.Errorf("the operator's definition changed:\n%v", got.Object)
	}
}

// registrations is a manager that records what is registered with it: every controller adds
// itself with Add.
type registrations struct {
	manager.Manager
	added []manager.Runnable
}

func (r *registrations) Add(run manager.Runnable) error {
	r.added = append(r.added, run)
	return r.Manager.Add(run)
}

// startManager builds and runs a manager as the injector does, with the controller when Enabled
// says so, until the test ends.
func startManager(t *testing.T, restConfig *rest.Config, cfg config.Injector) {
	t.Helper()
	on, err := Enabled(restConfig, cfg, testr.New(t))
	if err != nil {
		t.Fatal(err)
	}
	mgr := kubeenv.Manager(t, restConfig, CacheOptions(on))
	if err := Setup(mgr, on); err != nil {
		t.Fatal(err)
	}
	background.Run(t, "manager", mgr.Start)
	if !mgr.GetCache().WaitForCacheSync(t.Context()) {
		t.Fatal("the manager's cache did not sync")
	}
}

// serviceAccount is restConfig impersonating the service account namespace/name, bound to the
// ClusterRole the chart grants the injector in CNI mode, as the injector runs.
func serviceAccount(t *testing.T, env *kubeenv.Env, namespace, name string) *rest.Config {
	t.Helper()
	_, objs := chartcases.Render(t, "meshinit", namespace, map[string]any{"cni": map[string]any{"enabled": true}})
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name},
		Rules: chartcases.Find[rbacv1.ClusterRole](t, objs, "ClusterRole", "meshinit-injector").Rules}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}}}
	for _, obj := range []client.Object{role, binding} {
		if err := env.Client.Create(t.Context(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return cfg
}

// cluster drives the API server as an operator would.
type cluster struct {
	c client.Client
}

// namespace creates a namespace, labelled kuma.io/sidecar-injection=injection unless that is "".
func (k *cluster) namespace(t *testing.T, name, injection string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if injection != "" {
		ns.Labels = map[string]string{api.LabelSidecarInjection: injection}
	}
	if err := k.c.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
}

// label labels an existing namespace kuma.io/sidecar-injection=enabled.
func (k *cluster) label(t *testing.T, name string) {
	t.Helper()
	var ns corev1.Namespace
	if err := k.c.Get(t.Context(), client.ObjectKey{Name: name}, &ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels = map[string]string{api.LabelSidecarInjection: "enabled"}
	if err := k.c.Update(t.Context(), &ns); err != nil {
		t.Fatal(err)
	}
}

func (k *cluster) get(ctx context.Context, namespace string) (*unstructured.Unstructured, error) {
	d := &unstructured.Unstructured{}
	d.SetGroupVersionKind(definitionKind)
	return d, k.c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: NetworkName}, d)
}

// waitDefinition waits for namespace's kuma-cni definition and returns it.
func (k *cluster) waitDefinition(t *testing.T, namespace string) *unstructured.Unstructured {
	t.Helper()
	var d *unstructured.Unstructured
	err := poll.Wait(t.Context(), func() (bool, error) {
		var err error
		d, err = k.get(t.Context(), namespace)
		return err == nil, client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("namespace %s has no %s NetworkAttachmentDefinition: %v", namespace, NetworkName, err)
	}
	return d
}

// waitRecreated waits for a definition that replaces the deleted d, and returns it.
func (k *cluster) waitRecreated(t *testing.T, d *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	var again *unstructured.Unstructured
	err := poll.Wait(t.Context(), func() (bool, error) {
		var err error
		again, err = k.get(t.Context(), d.GetNamespace())
		return err == nil && again.GetUID() != d.GetUID(), client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("the deleted definition in %s was not created again: %v", d.GetNamespace(), err)
	}
	return again
}

// absent checks that namespace has no kuma-cni definition.
func (k *cluster) absent(t *testing.T, namespace string) {
	t.Helper()
	if d, err := k.get(t.Context(), namespace); !apierrors.IsNotFound(err) {
		t.Errorf("namespace %s: %v, %v; want no %s NetworkAttachmentDefinition", namespace, d.Object, err, NetworkName)
	}
}

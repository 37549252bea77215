// Package nodechart installs meshinit's chart on a one-node cluster of test/node, as an operator
// would (the Helm SDK), from the images `make images` built into bin/images: the injector runs as
// a pod and the API server calls it through its Service; in CNI mode, install-cni runs from the
// DaemonSet and chains kuma-cni into the node's conflist. It also holds the waits on the cluster's
// objects that the tests and benchmarks on the node share.
package nodechart

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v4/pkg/action"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/utils/ptr"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/node"
)

// The chart's release on the node, in the injector's namespace as the chart's defaults have it.
const Release, ReleaseNamespace = "meshinit", "kuma-system"

// StandinKumaDPVersion is the kuma-dp version the stand-in is installed as, Kuma's latest release,
// the injector's default.
const StandinKumaDPVersion = "2.14.3"

// Cluster is a node with meshinit's chart installed, or about to be.
type Cluster struct {
	*node.Node
	repo string
	// images are the images imported, by name in bin/images, with the reference they have.
	images map[string]string
	// values are the chart's values as installed; nil before the first install.
	values map[string]any
}

// New is the node n, on which the chart is to be installed from the repository at repo.
func New(n *node.Node, repo string) *Cluster {
	return &Cluster{Node: n, repo: repo, images: map[string]string{}}
}

// Images names the images of bin/images that a node needs: a test under CI=true fails without
// them (prereq.File), and `make images` builds them.
var Images = []string{"injector", "kuma-init", "kuma-init-legacy", "kuma-init-nft", "kuma-cni", "kuma-dp-standin", "echo"}

// Image imports the image bin/images/<name> into the node, once, and returns its reference: the
// one `make images` gave it, which the chart names.
func (c *Cluster) Image(ctx context.Context, t testing.TB, name string) string {
	t.Helper()
	if ref, ok := c.images[name]; ok {
		return ref
	}
	dir := filepath.Join(c.repo, "bin", "images", name)
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("%s/index.json: %v; want one image", dir, err)
	}
	ref := index.Manifests[0].Annotations["io.containerd.image.name"]
	if err := c.ImportImage(ctx, dir, ref); err != nil {
		t.Fatal(err)
	}
	c.images[name] = ref
	return ref
}

// BaseValues are the chart's values on the node: the images of bin/images (imported, so never
// pulled), under the registry and tag `make images` named them with, the stand-in as kuma-dp, and
// an injector that stops at once when replaced (no API server calls a stopping replica here:
// endpoints move first).
func (c *Cluster) BaseValues(ctx context.Context, t testing.TB) map[string]any {
	ref := c.Image(ctx, t, "injector")
	c.Image(ctx, t, "kuma-init")
	repo, tag, _ := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
	registry := strings.TrimSuffix(ref[:strings.LastIndex(ref, "/")], "/")
	if repo != "injector" || tag == "" {
		t.Fatalf("the injector's image is %s; want <registry>/injector:<tag>", ref)
	}
	return map[string]any{
		"global":       map[string]any{"image": map[string]any{"registry": registry, "tag": tag}},
		"controlPlane": map[string]any{"shutdownDrainSeconds": 0},
		// The stand-in's tag is meshinit's: the injector is told which kuma-dp it stands in for, the
		// chart's default one.
		// The pods here stop within 2 s (test/e2e's podSpec); the sidecar's drain fits in that.
		"dataPlane": map[string]any{"image": c.Image(ctx, t, "kuma-dp-standin"), "kumaDPVersion": StandinKumaDPVersion, "drainTime": "1s"},
		// install-cni's socket dir is a hostPath: under the node's root, the host keeps none of it.
		"cni": map[string]any{"runDir": filepath.Join(c.Root, "run", "kuma-cni")},
	}
}

// Chart installs the chart with the base values and values over them, or upgrades the release to
// them if it has others, and waits until the injector that serves them is the one the API server
// calls, and, with cni.enabled, until kuma-cni is installed on the node.
func (c *Cluster) Chart(ctx context.Context, t testing.TB, values map[string]any) {
	t.Helper()
	values = chartutil.MergeMaps(c.BaseValues(ctx, t), values)
	if reflect.DeepEqual(values, c.values) {
		return
	}
	if Dig(values, "cni", "enabled") == true {
		c.Image(ctx, t, "kuma-cni")
	}
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, namespace := c.Kubeconfig, ReleaseNamespace
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ReleaseNamespace, "secret"); err != nil {
		t.Fatal(err)
	}
	ch, err := charts.Load()
	if err != nil {
		t.Fatal(err)
	}
	// Helm applies; the waits below watch what matters here.
	if c.values == nil {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.CreateNamespace, in.WaitStrategy = Release, ReleaseNamespace, true, kube.HookOnlyStrategy
		if _, err := in.RunWithContext(ctx, ch, values); err != nil {
			t.Fatalf("helm install: %v", err)
		}
	} else {
		up := action.NewUpgrade(cfg)
		up.Namespace, up.WaitStrategy = ReleaseNamespace, kube.HookOnlyStrategy
		if _, err := up.RunWithContext(ctx, Release, ch, values); err != nil {
			t.Fatalf("helm upgrade: %v", err)
		}
	}
	wasCNI := Dig(c.values, "cni", "enabled") == true
	c.values = values
	c.waitInjector(ctx, t)
	switch isCNI := Dig(values, "cni", "enabled") == true; {
	case isCNI:
		c.WaitCNI(ctx, t)
	case wasCNI:
		// install-cni takes kuma-cni out of the node's conflist as it stops.
		if _, err := WaitFor(ctx, c.List("pods", CNINamespace, "app="+CNIName), nil, func(l []*corev1.Pod) bool { return len(l) == 0 }); err != nil {
			t.Fatalf("waiting for the CNI DaemonSet's pods to go: %v", err)
		}
	}
}

// The chart's names for the release.
const (
	InjectorName = Release + "-injector"
	CNIName      = Release + "-cni"
	CNINamespace = "kube-system"
)

// waitInjector waits until the injector's rollout is over and the API server calls only its new
// pods: the Service's ready endpoints are exactly the Deployment's pods that are not terminating
// (once the rollout is over, the old ReplicaSets' pods are all being deleted).
func (c *Cluster) waitInjector(ctx context.Context, t testing.TB) {
	t.Helper()
	// An injector that cannot start ends the wait at once.
	waitCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		_, err := WaitFor(waitCtx, c.List("pods", ReleaseNamespace, "app.kubernetes.io/component=injector"), func(p *corev1.Pod) (bool, error) {
			for _, s := range p.Status.ContainerStatuses {
				if w := s.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
					return false, fmt.Errorf("the injector's pod %s keeps failing: %s", p.Name, w.Message)
				}
			}
			return false, nil
		}, nil)
		cancel(err)
	}()
	d, err := c.WaitDeploymentAvailable(waitCtx, ReleaseNamespace, InjectorName)
	if err != nil {
		t.Fatalf("%v (%v)%s", err, context.Cause(waitCtx), c.injectorPods(context.WithoutCancel(ctx)))
	}
	pods, err := c.Clientset.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set(d.Spec.Selector.MatchLabels).String()})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" {
			want[p.Status.PodIP] = true
		}
	}
	if _, err := WaitFor(ctx, c.List("endpointslices", ReleaseNamespace, discoveryv1.LabelServiceName+"="+InjectorName), nil,
		func(slices []*discoveryv1.EndpointSlice) bool {
			got := map[string]bool{}
			for _, s := range slices {
				for _, ep := range s.Endpoints {
					if ptr.Deref(ep.Conditions.Ready, false) {
						got[ep.Addresses[0]] = true
					}
				}
			}
			return len(got) > 0 && maps.Equal(got, want)
		}); err != nil {
		t.Fatalf("waiting for the injector's Service to lead to its new pods %v only: %v", slices.Collect(maps.Keys(want)), err)
	}
}

// injectorPods says, for a failure's message, where the injector's pods are and how their logs end.
func (c *Cluster) injectorPods(ctx context.Context) string {
	pods, err := c.Clientset.CoreV1().Pods(ReleaseNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=injector"})
	if err != nil {
		return "\nthe injector's pods: " + err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "\npod %s: %s", p.Name, p.Status.Phase)
		for _, s := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, "; %s ready %v, %d restarts, %+v", s.Name, s.Ready, s.RestartCount, s.State)
		}
		tail := int64(20)
		log, err := c.Clientset.CoreV1().Pods(ReleaseNamespace).GetLogs(p.Name, &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
		if err != nil {
			log = []byte(err.Error())
		}
		fmt.Fprintf(&b, "\nthe end of its log:\n%s", log)
	}
	return b.String()
}

// WaitCNI waits until the CNI DaemonSet has rolled out on the node and its pod is ready: kuma-cni
// is in the node's conflist.
func (c *Cluster) WaitCNI(ctx context.Context, t testing.TB) {
	t.Helper()
	lw := cache.NewFilteredListWatchFromClient(c.Clientset.AppsV1().RESTClient(), "daemonsets", CNINamespace, ByName(CNIName))
	if _, err := WaitFor(ctx, lw, func(ds *appsv1.DaemonSet) (bool, error) {
		s := ds.Status
		return s.ObservedGeneration >= ds.Generation && s.DesiredNumberScheduled == 1 && s.UpdatedNumberScheduled == 1 &&
			s.NumberReady == 1 && s.NumberAvailable == 1, nil
	}, nil); err != nil {
		t.Fatalf("waiting for the CNI DaemonSet: %v", err)
	}
}

// List is a ListerWatcher of the objects of a resource in a namespace that a label selector
// selects.
func (c *Cluster) List(resource, namespace, selector string) cache.ListerWatcher {
	client := c.Clientset.CoreV1().RESTClient()
	switch resource {
	case "endpointslices":
		client = c.Clientset.DiscoveryV1().RESTClient()
	case "daemonsets", "deployments":
		client = c.Clientset.AppsV1().RESTClient()
	}
	return cache.NewFilteredListWatchFromClient(client, resource, namespace, func(o *metav1.ListOptions) { o.LabelSelector = selector })
}

// ByName narrows a list to the object of that name.
func ByName(name string) func(*metav1.ListOptions) {
	return func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
}

// waitTimeout bounds a wait with no deadline of its own: generous, on two shared cores.
const waitTimeout = 2 * time.Minute

// WaitFor watches what lw lists until one object satisfies cond (when all is nil) or all the
// objects together satisfy all, and returns the last object seen. Watching, not polling: each
// change is looked at as it happens; a watch that ends is taken up again from a new list.
func WaitFor[T runtime.Object](ctx context.Context, lw cache.ListerWatcher, cond func(T) (bool, error), all func([]T) bool) (T, error) {
	var last T
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, waitTimeout)
		defer cancel()
	}
	var zero T
	objType := reflect.New(reflect.TypeOf(zero).Elem()).Interface().(runtime.Object)
	current := map[string]T{}
	see := func(o T) {
		key, _ := cache.MetaNamespaceKeyFunc(o)
		current[key], last = o, o
	}
	check := func() (bool, error) {
		if all != nil {
			return all(slices.Collect(maps.Values(current))), nil
		}
		for _, o := range current {
			if done, err := cond(o); done || err != nil {
				last = o
				return done, err
			}
		}
		return false, nil
	}
	// The objects listed first are looked at as a whole: an empty list sends no event.
	precondition := func(store cache.Store) (bool, error) {
		for _, item := range store.List() {
			if o, ok := item.(T); ok {
				see(o)
			}
		}
		return check()
	}
	_, err := watchtools.UntilWithSync(ctx, lw, objType, precondition, func(ev watch.Event) (bool, error) {
		o, ok := ev.Object.(T)
		if !ok {
			return false, nil
		}
		if ev.Type == watch.Deleted {
			key, _ := cache.MetaNamespaceKeyFunc(o)
			delete(current, key)
		} else {
			see(o)
		}
		if all != nil {
			return all(slices.Collect(maps.Values(current))), nil
		}
		if ev.Type == watch.Deleted {
			return false, nil
		}
		return cond(o)
	})
	return last, err
}

// Dig returns the value at a path of nested maps, or nil.
func Dig(m map[string]any, path ...string) any {
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// MeshedNamespace creates a namespace labelled for injection on the node, if it is not there yet.
func (c *Cluster) MeshedNamespace(ctx context.Context, t testing.TB, name string) {
	t.Helper()
	if _, err := c.Clientset.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); err == nil {
		return
	}
	if _, err := c.CreateNamespace(ctx, name, map[string]string{api.LabelSidecarInjection: "enabled"}); err != nil {
		t.Fatal(err)
	}
}

// ImageCommand returns the entrypoint and command of an image of bin/images imported by Image, by its
// reference,
// for this machine's platform.
func (c *Cluster) ImageCommand(t testing.TB, ref string) (entrypoint, cmd []string) {
	t.Helper()
	for name, r := range c.images {
		if r != ref {
			continue
		}
		idx, err := layout.ImageIndexFromPath(filepath.Join(c.repo, "bin", "images", name))
		if err != nil {
			t.Fatal(err)
		}
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		platforms, err := idx.ImageIndex(m.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		pm, err := platforms.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range pm.Manifests {
			if d.Platform != nil && d.Platform.Architecture == goruntime.GOARCH {
				img, err := platforms.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				return cfg.Config.Entrypoint, cfg.Config.Cmd
			}
		}
	}
	t.Fatalf("no image of bin/images is %s for %s", ref, goruntime.GOARCH)
	return nil, nil
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
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

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/node"
	"github.com/meshinit/meshinit/test/node/hoststate"
	"github.com/meshinit/meshinit/test/prereq"
)

// nodeEnv is the one-node cluster (test/node) that this package's tests on a real kubelet share:
// one per test binary, since a node costs seconds to start and stop. It holds the machine's node
// lock from its start until TestMain stops it and checks that the host is as it was before.
type nodeEnv struct {
	*node.Node
	lock   *node.Lock
	before hoststate.State
	// ports are the pods' veths seen on the node's bridge, which must go with the node.
	ports map[string]bool
	// images are the images imported, by name in bin/images, with the reference they have.
	images map[string]string
	repo   string
	// values are the chart's values as installed; nil before the first install.
	values map[string]any
	// dns is the pods' nameserver, on the node's bridge.
	dns *nameserver
}

// The node the tests share, started by the first test that needs it.
var shared struct {
	env *nodeEnv
	err error
}

// release is the chart's release on the node, in the injector's namespace as the chart's
// defaults have it.
const release, releaseNamespace = "meshinit", "kuma-system"

// TestMain stops the shared node, if a test started it, and fails the run if the host is not as
// it was before the node (its veths, mounts, cgroups, processes, files, rules, sysctls).
func TestMain(m *testing.M) {
	code := m.Run()
	if shared.env != nil {
		// A Ctrl-C now would leave the node for the next run to clean up: let it finish.
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		if code != 0 && !interrupted {
			shared.env.DumpLogs(func(format string, args ...any) { fmt.Printf(format+"\n", args...) })
		}
		if err := shared.env.stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		} else if demoRan {
			fmt.Println("Cleaned up: the node stopped, its processes, pods, mounts, cgroups, bridge and veths, files and sysctls undone; the host is as it was before.")
		}
	}
	os.Exit(code)
}

// onNode returns the shared node, starting it if no test has yet: logf hears of the start's
// steps. A missing prerequisite (root, a binary of bin/, the images of bin/images) fails the test
// under CI=true and skips it elsewhere.
func onNode(ctx context.Context, t *testing.T, logf func(string, ...any)) *nodeEnv {
	t.Helper()
	node.Prerequisites(t)
	repo := prereq.RepoRoot(t)
	for _, name := range []string{"injector", "kuma-init", "kuma-init-legacy", "kuma-cni", "kuma-dp-standin", "echo"} {
		prereq.File(t, filepath.Join(repo, "bin", "images", name, "index.json"))
	}
	if shared.env == nil && shared.err == nil {
		shared.env, shared.err = startNode(ctx, repo, logf)
	}
	if shared.err != nil {
		t.Fatalf("the shared node: %v", shared.err)
	}
	return shared.env
}

func startNode(ctx context.Context, repo string, logf func(string, ...any)) (_ *nodeEnv, err error) {
	lock, err := node.AcquireLock(ctx, logf)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			lock.Release()
		}
	}()
	// What a crashed run left is not this run's to see.
	if err := lock.Recover(logf); err != nil {
		return nil, err
	}
	before, err := hoststate.Take()
	if err != nil {
		return nil, err
	}
	n, err := node.New(ctx, node.Options{Lock: lock, Logf: logf})
	if err != nil {
		return nil, err
	}
	e := &nodeEnv{Node: n, lock: lock, before: before, ports: map[string]bool{}, images: map[string]string{}, repo: repo}
	if e.dns, err = startNameserver(); err != nil {
		n.Stop()
		return nil, err
	}
	return e, nil
}

// stop stops the node and compares the host with what it was before.
func (e *nodeEnv) stop() error {
	defer e.lock.Release()
	e.notePorts()
	e.dns.Close()
	if err := e.Stop(); err != nil {
		return err
	}
	after, err := hoststate.Take()
	if err != nil {
		return err
	}
	if c := hoststate.Changes(e.before, after); c != "" {
		return fmt.Errorf("the host is not as it was before the node:\n%s", c)
	}
	if len(e.ports) == 0 {
		return nil // no pod ran: a test stopped before
	}
	return hoststate.PortsGone(slices.Collect(maps.Keys(e.ports)))
}

// notePorts remembers the veths on the node's bridge, to check after the node that they went.
func (e *nodeEnv) notePorts() {
	ports, _ := hoststate.BridgePorts()
	for _, p := range ports {
		e.ports[p] = true
	}
}

// image imports the image bin/images/<name> into the node, once, and returns its reference: the
// one `make images` gave it, which the chart names.
func (e *nodeEnv) image(ctx context.Context, t *testing.T, name string) string {
	t.Helper()
	if ref, ok := e.images[name]; ok {
		return ref
	}
	dir := filepath.Join(e.repo, "bin", "images", name)
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
	if err := e.ImportImage(ctx, dir, ref); err != nil {
		t.Fatal(err)
	}
	e.images[name] = ref
	return ref
}

// baseValues are the chart's values on the node: the images of bin/images (imported, so never
// pulled), under the registry and tag `make images` named them with, the stand-in as kuma-dp, and
// an injector that stops at once when replaced (no API server calls a stopping replica here:
// endpoints move first).
func (e *nodeEnv) baseValues(ctx context.Context, t *testing.T) map[string]any {
	ref := e.image(ctx, t, "injector")
	e.image(ctx, t, "kuma-init")
	repo, tag, _ := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
	registry := strings.TrimSuffix(ref[:strings.LastIndex(ref, "/")], "/")
	if repo != "injector" || tag == "" {
		t.Fatalf("the injector's image is %s; want <registry>/injector:<tag>", ref)
	}
	return map[string]any{
		"global":       map[string]any{"image": map[string]any{"registry": registry, "tag": tag}},
		"controlPlane": map[string]any{"shutdownDrainSeconds": 0},
		"dataPlane":    map[string]any{"image": e.image(ctx, t, "kuma-dp-standin")},
	}
}

// chart installs the chart with the base values and values over them, or upgrades the release to
// them if it has others, and waits until the injector that serves them is the one the API server
// calls, and, with cni.enabled, until kuma-cni is installed on the node.
func (e *nodeEnv) chart(ctx context.Context, t *testing.T, values map[string]any) {
	t.Helper()
	values = chartutil.MergeMaps(e.baseValues(ctx, t), values)
	if reflect.DeepEqual(values, e.values) {
		return
	}
	if dig(values, "cni", "enabled") == true {
		e.image(ctx, t, "kuma-cni")
	}
	flags := genericclioptions.NewConfigFlags(false)
	kubeconfig, namespace := e.Kubeconfig, releaseNamespace
	flags.KubeConfig, flags.Namespace = &kubeconfig, &namespace
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, releaseNamespace, "secret"); err != nil {
		t.Fatal(err)
	}
	ch, err := charts.Load()
	if err != nil {
		t.Fatal(err)
	}
	// Helm applies; the waits below watch what matters here.
	if e.values == nil {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.CreateNamespace, in.WaitStrategy = release, releaseNamespace, true, kube.HookOnlyStrategy
		if _, err := in.RunWithContext(ctx, ch, values); err != nil {
			t.Fatalf("helm install: %v", err)
		}
	} else {
		up := action.NewUpgrade(cfg)
		up.Namespace, up.WaitStrategy = releaseNamespace, kube.HookOnlyStrategy
		if _, err := up.RunWithContext(ctx, release, ch, values); err != nil {
			t.Fatalf("helm upgrade: %v", err)
		}
	}
	wasCNI := dig(e.values, "cni", "enabled") == true
	e.values = values
	e.waitInjector(ctx, t)
	switch isCNI := dig(values, "cni", "enabled") == true; {
	case isCNI:
		e.waitCNI(ctx, t)
	case wasCNI:
		// install-cni takes kuma-cni out of the node's conflist as it stops.
		if _, err := waitFor(ctx, e.list("pods", cniNamespace, "app="+cniName), nil, func(l []*corev1.Pod) bool { return len(l) == 0 }); err != nil {
			t.Fatalf("waiting for the CNI DaemonSet's pods to go: %v", err)
		}
	}
}

// The chart's names for the release.
const (
	injectorName = release + "-injector"
	cniName      = release + "-cni"
	cniNamespace = "kube-system"
)

// waitInjector waits until the injector's rollout is over and the API server calls only its new
// pods: the Service's ready endpoints are exactly the Deployment's pods that are not terminating
// (once the rollout is over, the old ReplicaSets' pods are all being deleted).
func (e *nodeEnv) waitInjector(ctx context.Context, t *testing.T) {
	t.Helper()
	d, err := e.WaitDeploymentAvailable(ctx, releaseNamespace, injectorName)
	if err != nil {
		t.Fatal(err)
	}
	pods, err := e.Clientset.CoreV1().Pods(releaseNamespace).List(ctx, metav1.ListOptions{
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
	if _, err := waitFor(ctx, e.list("endpointslices", releaseNamespace, discoveryv1.LabelServiceName+"="+injectorName), nil,
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

// waitCNI waits until the CNI DaemonSet has rolled out on the node and its pod is ready: kuma-cni
// is in the node's conflist.
func (e *nodeEnv) waitCNI(ctx context.Context, t *testing.T) {
	t.Helper()
	lw := cache.NewFilteredListWatchFromClient(e.Clientset.AppsV1().RESTClient(), "daemonsets", cniNamespace, byName(cniName))
	if _, err := waitFor(ctx, lw, func(ds *appsv1.DaemonSet) (bool, error) {
		s := ds.Status
		return s.ObservedGeneration >= ds.Generation && s.DesiredNumberScheduled == 1 && s.UpdatedNumberScheduled == 1 &&
			s.NumberReady == 1 && s.NumberAvailable == 1, nil
	}, nil); err != nil {
		t.Fatalf("waiting for the CNI DaemonSet: %v", err)
	}
}

// list is a ListerWatcher of the objects of a resource in a namespace that a label selector
// selects.
func (e *nodeEnv) list(resource, namespace, selector string) cache.ListerWatcher {
	client := e.Clientset.CoreV1().RESTClient()
	switch resource {
	case "endpointslices":
		client = e.Clientset.DiscoveryV1().RESTClient()
	case "daemonsets", "deployments":
		client = e.Clientset.AppsV1().RESTClient()
	}
	return cache.NewFilteredListWatchFromClient(client, resource, namespace, func(o *metav1.ListOptions) { o.LabelSelector = selector })
}

func byName(name string) func(*metav1.ListOptions) {
	return func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
	}
}

// waitTimeout bounds a wait with no deadline of its own: generous, on two shared cores.
const waitTimeout = 2 * time.Minute

// waitFor watches what lw lists until one object satisfies cond (when all is nil) or all the
// objects together satisfy all, and returns the last object seen. Watching, not polling: each
// change is looked at as it happens; a watch that ends is taken up again from a new list.
func waitFor[T runtime.Object](ctx context.Context, lw cache.ListerWatcher, cond func(T) (bool, error), all func([]T) bool) (T, error) {
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

// dig returns the value at a path of nested maps, or nil.
func dig(m map[string]any, path ...string) any {
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

// meshedNamespace creates a namespace labelled for injection on the node, if it is not there yet.
func (e *nodeEnv) meshedNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	if _, err := e.Clientset.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{}); err == nil {
		return
	}
	if _, err := e.CreateNamespace(ctx, name, map[string]string{api.LabelSidecarInjection: "enabled"}); err != nil {
		t.Fatal(err)
	}
}

// nameserver is the pods' DNS server: it listens on the node's bridge, port 53, answers each
// query with "answer to " and the query, and remembers from where each came.
type nameserver struct {
	pc   *net.UDPConn
	mu   sync.Mutex
	from []string
}

func startNameserver() (*nameserver, error) {
	pc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: node.BridgeIP, Port: 53})
	if err != nil {
		return nil, fmt.Errorf("the pods' nameserver: %w", err)
	}
	ns := &nameserver{pc: pc}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.from = append(ns.from, from.String())
			ns.mu.Unlock()
			pc.WriteToUDPAddrPort(append([]byte("answer to "), buf[:n]...), from)
		}
	}()
	return ns, nil
}

func (ns *nameserver) Close() { ns.pc.Close() }

// queriesFrom says how many queries came from an address.
func (ns *nameserver) queriesFrom(ip string) int {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	n := 0
	for _, f := range ns.from {
		if host, _, _ := net.SplitHostPort(f); host == ip {
			n++
		}
	}
	return n
}

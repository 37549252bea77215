// Package protection pins that an injected pod keeps the configuration it was admitted with,
// through a real kube-apiserver with the injector registered from the chart: the chart's
// ValidatingAdmissionPolicy refuses updates that rewrite what the injector wrote, and ephemeral
// containers that could bypass the proxy; where the policy does not run, kuma-cni and the
// validation container, the real binaries in a network namespace, refuse a rewritten document by
// the digest the injector sealed into the pod's containers.
package protection

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/injectorenv"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

// start runs a control plane with the injector registered, in CNI mode or not, for one test.
func start(t *testing.T, cni bool) *injectorenv.Env {
	t.Helper()
	cfg := testconfig.Default()
	cfg.Injector.CNIEnabled = cni
	e, err := injectorenv.Start(context.Background(), injectorenv.Options{Config: cfg})
	if err != nil {
		t.Fatalf("the injector's test environment: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
	})
	return e
}

func namespace(t *testing.T, e *injectorenv.Env, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-", Labels: labels}}
	if err := e.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}

func create(t *testing.T, c client.Client, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	if err := c.Create(t.Context(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// applyPolicy applies the chart's policy and binding, rendered as the injector's registration
// was, and waits until the API server enforces them: a canary pod's configuration can no longer
// be rewritten.
func applyPolicy(t *testing.T, e *injectorenv.Env, canary *corev1.Pod) {
	t.Helper()
	objs, err := charts.Objects(e.Manifests)
	if err != nil {
		t.Fatal(err)
	}
	applied := 0
	for _, obj := range objs {
		if obj.GetKind() != "ValidatingAdmissionPolicy" && obj.GetKind() != "ValidatingAdmissionPolicyBinding" {
			continue
		}
		if err := e.Client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("meshinit-test"), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
		applied++
	}
	if applied != 2 {
		t.Fatalf("the chart renders %d of the policy and its binding, want both", applied)
	}
	WaitEnforced(t, e.Client, canary)
}

func get(t *testing.T, c client.Client, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	got := &corev1.Pod{}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(pod), got); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestPolicyKeepsInjectedPodsAsAdmitted reproduces the hole first: the configuration of an
// injected pod, held before it starts, is rewritten by an update, and sticks. With the chart's
// policy applied, every change of what the injector wrote is refused with its reason, by anyone
// but the injector's own account, while other updates, the scheduler's among them, go through.
func TestPolicyKeepsInjectedPodsAsAdmitted(t *testing.T) {
	e := start(t, false)
	ns := namespace(t, e, map[string]string{api.LabelSidecarInjection: "enabled"})
	// An injected pod of the classic layout, as a cluster before native sidecars has them, made
	// offline and created in a namespace the webhook does not watch: injected all the same.
	classic := (&inject.Injector{Config: testconfig.Default()})
	plainNS := namespace(t, e, nil)

	hole := create(t, e.Client, GatedPod(ns, "hole"))
	if hole.Annotations[api.AnnotationSidecarInjected] != "true" {
		t.Fatalf("the pod is not injected: %v", hole.Annotations)
	}
	if err := Patch(t, e.Client, hole, Annotations(api.AnnotationTransparentProxyConfig, Forged)); err != nil {
		t.Fatalf("without the policy, rewriting the configuration: %v", err)
	}
	if got := get(t, e.Client, hole).Annotations[api.AnnotationTransparentProxyConfig]; got != Forged {
		t.Fatalf("without the policy the rewrite did not stick: %s", got)
	}

	applyPolicy(t, e, create(t, e.Client, GatedPod(ns, "canary")))

	written := func(keys string) string {
		return "annotation " + keys + " of an injected pod is the injector's, written when the pod was created, and cannot change: " +
			"Kuma's control plane, kuma-cni and Multus act on it; accepted: an update that leaves it as it is (recreate the pod to change it)"
	}
	container := func(name string) string {
		return "container " + name + " of an injected pod is the injector's, made when the pod was created, and cannot change; " +
			"accepted: an update that leaves the containers the injector added as they are (recreate the pod to change them)"
	}
	// newImage gives a container of the pod another image, the one field of a container an update
	// may change.
	newImage := func(name string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
				if i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name }); i >= 0 {
					cs[i].Image = "example.com/not-" + name + ":1"
				}
			}
		}
	}
	classicPod, err := classic.Inject(GatedPod(plainNS, "classic"), plainNS, map[string]string{api.LabelSidecarInjection: "enabled"})
	if err != nil {
		t.Fatal(err)
	}
	cniConfig := testconfig.Default()
	cniConfig.Injector.CNIEnabled = true
	cniPod, err := (&inject.Injector{Config: cniConfig, NativeSidecars: true}).Inject(GatedPod(plainNS, "cni"), plainNS,
		map[string]string{api.LabelSidecarInjection: "enabled"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		patch  map[string]any
		update func(*corev1.Pod) // instead of patch
		want   string            // the policy's message; empty: allowed
	}{
		{"the configuration rewritten", GatedPod(ns, "config"), Annotations(api.AnnotationTransparentProxyConfig, Forged),
			nil, Marks(api.AnnotationTransparentProxyConfig)},
		{"the injected marker and the configuration removed", GatedPod(ns, "marker"),
			map[string]any{"metadata": map[string]any{"annotations": map[string]any{api.AnnotationSidecarInjected: nil, api.AnnotationTransparentProxyConfig: nil}}},
			nil, Marks(api.AnnotationSidecarInjected + ", " + api.AnnotationTransparentProxyConfig)},
		{"a configuration added to a pod the injector left alone", GatedPod(plainNS, "plain"), Annotations(api.AnnotationTransparentProxyConfig, Forged),
			nil, Marks(api.AnnotationTransparentProxyConfig)},
		{"the redirect ports and the gateway Kuma's control plane reads", GatedPod(ns, "ports"),
			Annotations(api.AnnotationInboundPort, "16006", api.AnnotationGateway, "enabled"),
			nil, written(api.AnnotationInboundPort + ", " + api.AnnotationGateway)},
		{"the mesh label", GatedPod(ns, "mesh"), map[string]any{"metadata": map[string]any{"labels": map[string]any{api.LabelMesh: "other"}}}, nil,
			"label kuma.io/mesh of an injected pod is the injector's, written when the pod was created, and cannot change: the sidecar was " +
				"started in that mesh; accepted: an update that leaves it as it is (recreate the pod to change it)"},
		{"the sidecar's image", GatedPod(ns, "sidecar"), nil, newImage(inject.SidecarName), container(inject.SidecarName)},
		{"kuma-init's image, in the classic layout", classicPod.Pod, nil, newImage(inject.InitName), container(inject.InitName)},
		{"Multus's networks, without kuma-cni, in CNI mode", cniPod.Pod, Annotations(api.AnnotationMultusNetworks, "macvlan-conf"), nil,
			written(api.AnnotationMultusNetworks)},
		{"the validation container's image, in CNI mode", renamed(cniPod.Pod, "cni-validation"), nil, newImage(inject.ValidationName), container(inject.ValidationName)},
		{"an annotation and a label of the pod's own", GatedPod(ns, "own"),
			map[string]any{"metadata": map[string]any{"annotations": map[string]any{"example.com/owner": "team-a"}, "labels": map[string]any{"tier": "web"}}}, nil, ""},
		{"the scheduling gate removed, as the pod's controller does", GatedPod(ns, "released"),
			map[string]any{"spec": map[string]any{"schedulingGates": nil}}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := create(t, e.Client, tc.pod)
			var err error
			if tc.update != nil {
				tc.update(pod)
				err = e.Client.Update(t.Context(), pod)
			} else {
				err = Patch(t, e.Client, pod, tc.patch)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || err.Error() != Denied(pod.Name, tc.want)):
				t.Errorf("update: %v\nwant: %s", err, Denied(pod.Name, tc.want))
			}
		})
	}

	// The injector's own account is exempt.
	injector := rest.CopyConfig(e.Rest)
	injector.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + e.Config.SystemNamespace + ":meshinit-injector"}
	grantPodUpdates(t, e.Client, injector.Impersonate.UserName)
	as, err := client.New(injector, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	exempt := create(t, e.Client, GatedPod(ns, "exempt"))
	if err := Patch(t, as, exempt, Annotations(api.AnnotationTransparentProxyConfig, Forged)); err != nil {
		t.Errorf("the injector's own account: %v", err)
	}
}

// renamed is a copy of pod under another name.
func renamed(pod *corev1.Pod, name string) *corev1.Pod {
	p := pod.DeepCopy()
	p.Name = name
	return p
}

// grantPodUpdates lets user update pods, as RBAC must before the policy is even asked.
func grantPodUpdates(t *testing.T, c client.Client, user string) {
	t.Helper()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{GenerateName: "pod-updates-"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "patch", "update"}}}}
	if err := c.Create(t.Context(), role); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{GenerateName: "pod-updates-"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}}}
	if err := c.Create(t.Context(), binding); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyRefusesEphemeralContainersThatBypass: kubectl debug adds containers to a running pod
// through a subresource the webhook never sees. In an injected pod, the policy refuses one that
// runs as the sidecar's UID, or may switch to it; one that cannot, and any in other pods, go in.
func TestPolicyRefusesEphemeralContainersThatBypass(t *testing.T) {
	e := start(t, false)
	ns := namespace(t, e, map[string]string{api.LabelSidecarInjection: "enabled"})
	applyPolicy(t, e, create(t, e.Client, GatedPod(ns, "canary")))
	plainNS := namespace(t, e, nil)

	restricted := &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
		Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
	for _, tc := range []struct {
		name   string
		ns     string
		podSC  *corev1.PodSecurityContext
		sc     *corev1.SecurityContext
		refuse string
	}{
		{"as the sidecar's UID", ns, nil, &corev1.SecurityContext{RunAsUser: ptr.To[int64](5678), RunAsNonRoot: ptr.To(true)},
			AsSidecarUID},
		{"as the sidecar's UID, by the pod's user", ns, &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](5678)}, &corev1.SecurityContext{
			RunAsNonRoot: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			AsSidecarUID},
		{"as whichever user the image says, root by default", ns, &corev1.PodSecurityContext{}, nil,
			" runs, or may run, as root (runAsUser: 0, or neither it nor its pod sets runAsNonRoot: true or a runAsUser), and root may " +
				"switch to UID 5678, the pod's sidecar's, whose traffic is never redirected, and bypass the proxy"},
		{"with SETUID given", ns, nil, &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000), Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SETUID"}}},
			" is privileged or given the SETUID capability, and so may switch to UID 5678, the pod's sidecar's, whose traffic is never redirected, and bypass the proxy"},
		{"privileged", ns, nil, &corev1.SecurityContext{RunAsNonRoot: ptr.To(true), Privileged: ptr.To(true)},
			" is privileged or given the SETUID capability, and so may switch to UID 5678, the pod's sidecar's, whose traffic is never redirected, and bypass the proxy"},
		{"restricted, as kubectl debug --profile=restricted", ns, nil, restricted, ""},
		{"as root without SETUID", ns, nil, &corev1.SecurityContext{RunAsUser: ptr.To[int64](0), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}, ""},
		{"as root in a pod that is not injected", plainNS, nil, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := GatedPod(tc.ns, "debugged")
			pod.GenerateName, pod.Name = "debugged-", ""
			if tc.podSC != nil {
				pod.Spec.SecurityContext = tc.podSC
				if tc.podSC.RunAsUser != nil {
					// The app runs as its own user: only the debugging container inherits the pod's.
					pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000)}
				}
			}
			pod = create(t, e.Client, pod)
			pod.Spec.EphemeralContainers = append(pod.Spec.EphemeralContainers, corev1.EphemeralContainer{
				EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debugger", Image: "busybox", SecurityContext: tc.sc}})
			err := e.Client.SubResource("ephemeralcontainers").Update(t.Context(), pod)
			switch {
			case tc.refuse == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refuse != "" && (err == nil || err.Error() != Denied(pod.Name, "ephemeral container debugger"+tc.refuse+EphemeralAccepted)):
				t.Errorf("adding the container: %v\nwant: %s", err, Denied(pod.Name, "ephemeral container debugger"+tc.refuse+EphemeralAccepted))
			}
			if err == nil && !slices.ContainsFunc(get(t, e.Client, pod).Spec.EphemeralContainers, func(c corev1.EphemeralContainer) bool {
				return c.Name == "debugger"
			}) {
				t.Error("admitted, but the pod has no ephemeral container")
			}
		})
	}
}

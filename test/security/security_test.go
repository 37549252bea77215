// Package security pins the claims of docs/reliability.md's security review: what each component
// may do (its user, capabilities, host paths and API rights, as the chart deploys it and the
// webhook injects it) and what a pod's author cannot do through annotations.
package security

import (
	"errors"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/admitted"
	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/podkit"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

// unprivileged checks a security context runs as a non-root user with nothing to gain.
func unprivileged(t *testing.T, who string, sc *corev1.SecurityContext, pod *corev1.PodSecurityContext) {
	t.Helper()
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod != nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 ||
		(sc.Privileged != nil && *sc.Privileged) {
		t.Errorf("%s is not unprivileged: %+v", who, sc)
	}
}

// TestInjectorIsUnprivileged: the injector runs as UID 65532 with no capability, a read-only root
// and RuntimeDefault seccomp, and may only read namespaces unless CNI mode asks for more.
func TestInjectorIsUnprivileged(t *testing.T) {
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", nil)
	d := chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "meshinit-injector")
	spec := d.Spec.Template.Spec
	unprivileged(t, "the injector", spec.Containers[0].SecurityContext, spec.SecurityContext)
	if *spec.SecurityContext.RunAsUser != 65532 || spec.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", spec.SecurityContext)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("the injector shares a host namespace")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("the injector mounts the host path %s", v.HostPath.Path)
		}
	}
	rules := chartcases.Find[rbacv1.ClusterRole](t, objs, "ClusterRole", "meshinit-injector").Rules
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
		// A pod's own transparent-proxy ConfigMap, in its namespace: read, never written.
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}},
	}
	if !equalRules(rules, want) {
		t.Errorf("the injector's rights: %+v, want %+v", rules, want)
	}
	// In its own namespace: the cluster's transparent-proxy ConfigMap alone, and ContainerPatch
	// objects, read.
	role := chartcases.Find[rbacv1.Role](t, objs, "Role", "meshinit-injector")
	if role.Namespace != "kuma-system" || !equalRules(role.Rules, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"kuma-transparent-proxy-config"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"kuma.io"}, Resources: []string{"containerpatches"}, Verbs: []string{"get"}},
	}) {
		t.Errorf("the injector's rights in its namespace: %s %+v", role.Namespace, role.Rules)
	}
	for _, obj := range objs {
		if (obj.GetKind() == "Role" || obj.GetKind() == "RoleBinding") && obj.GetName() != "meshinit-injector" {
			t.Errorf("without CNI mode the chart grants %s %s", obj.GetKind(), obj.GetName())
		}
	}
}

// TestCNIRights: in CNI mode the injector also creates NetworkAttachmentDefinitions, patches nodes
// and watches the CNI pods in their namespace only; the DaemonSet writes only the two CNI host
// directories and its socket's, and its account may get pods and nodes and its own DaemonSet, and,
// for the repair of its node's pods (on by default), watch and delete pods, patch their status and
// record events; without the repair, none of those.
func TestCNIRights(t *testing.T) {
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", map[string]any{"cni": map[string]any{"enabled": true}})
	injector := chartcases.Find[rbacv1.ClusterRole](t, objs, "ClusterRole", "meshinit-injector").Rules
	wantInjector := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get"}},
		{APIGroups: []string{"k8s.cni.cncf.io"}, Resources: []string{"network-attachment-definitions"}, Verbs: []string{"get", "list", "watch", "create"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get", "list", "watch", "patch"}},
	}
	if !equalRules(injector, wantInjector) {
		t.Errorf("the injector's cluster rights in CNI mode: %+v", injector)
	}
	role := chartcases.Find[rbacv1.Role](t, objs, "Role", "meshinit-injector-cni-pods")
	if role.Namespace != "kube-system" || !equalRules(role.Rules, []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}}}) {
		t.Errorf("the injector's rights on CNI pods: %s %+v", role.Namespace, role.Rules)
	}
	cni := chartcases.Find[rbacv1.ClusterRole](t, objs, "ClusterRole", "meshinit-cni").Rules
	if !equalRules(cni, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/status"}, Verbs: []string{"patch"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}) {
		t.Errorf("the CNI account's cluster rights: %+v", cni)
	}
	ownDS := chartcases.Find[rbacv1.Role](t, objs, "Role", "meshinit-cni")
	if ownDS.Namespace != "kube-system" || !equalRules(ownDS.Rules, []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"daemonsets"}, ResourceNames: []string{"meshinit-cni"}, Verbs: []string{"get"}}}) {
		t.Errorf("the CNI account's rights in its namespace: %s %+v", ownDS.Namespace, ownDS.Rules)
	}
	_, noRepair := chartcases.Render(t, "meshinit", "kuma-system", map[string]any{"cni": map[string]any{"enabled": true, "repair": map[string]any{"enabled": false}}})
	if cni := chartcases.Find[rbacv1.ClusterRole](t, noRepair, "ClusterRole", "meshinit-cni").Rules; !equalRules(cni, []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}},
	}) {
		t.Errorf("the CNI account's cluster rights without the repair: %+v", cni)
	}

	ds := chartcases.Find[appsv1.DaemonSet](t, objs, "DaemonSet", "meshinit-cni")
	spec := ds.Spec.Template.Spec
	var paths []string
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			paths = append(paths, v.HostPath.Path)
		}
	}
	if !slices.Equal(paths, []string{"/etc/cni/multus/net.d", "/var/lib/cni/bin", "/var/run/kuma-cni"}) {
		t.Errorf("install-cni mounts the host paths %v", paths)
	}
	sc := spec.Containers[0].SecurityContext
	if *sc.RunAsUser != 0 || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation || *sc.Privileged ||
		!slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
		t.Errorf("install-cni's security context: %+v", sc)
	}
	if p := spec.SecurityContext; p == nil || p.SeccompProfile == nil || p.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("install-cni's pod security context %+v, want the RuntimeDefault seccomp profile", p)
	}
	if probe := spec.Containers[0].ReadinessProbe.HTTPGet; probe.Host != "127.0.0.1" {
		t.Errorf("install-cni's readiness is served on %q, not the node's loopback", probe.Host)
	}
}

func equalRules(got, want []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(got, want, func(a, b rbacv1.PolicyRule) bool {
		return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) &&
			slices.Equal(a.Verbs, b.Verbs) && slices.Equal(a.ResourceNames, b.ResourceNames) && len(a.NonResourceURLs) == 0
	})
}

func injectPod(t *testing.T, pod *corev1.Pod, cni bool) (*inject.Result, error) {
	t.Helper()
	cfg := testconfig.Default()
	cfg.Injector.CNIEnabled = cni
	return (&inject.Injector{Config: cfg, NativeSidecars: true}).Inject(pod, "app", map[string]string{api.LabelSidecarInjection: "enabled"})
}

func appPod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "app", Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
}

// TestInjectedContainers: kuma-init is root with NET_ADMIN and NET_RAW only; kuma-sidecar runs as
// 5678 with nothing; in CNI mode no container of the pod has any capability.
func TestInjectedContainers(t *testing.T) {
	res, err := injectPod(t, appPod(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	init := podkit.MustContainer(t, res.Pod, inject.InitName).SecurityContext
	if *init.RunAsUser != 0 || !*init.ReadOnlyRootFilesystem || *init.AllowPrivilegeEscalation || init.Privileged != nil ||
		!slices.Equal(init.Capabilities.Add, []corev1.Capability{"NET_ADMIN", "NET_RAW"}) ||
		!slices.Equal(init.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("kuma-init's security context: %+v", init)
	}
	sidecar := podkit.MustContainer(t, res.Pod, inject.SidecarName).SecurityContext
	unprivileged(t, "kuma-sidecar", sidecar, nil)
	if *sidecar.RunAsUser != 5678 || *sidecar.RunAsGroup != 5678 {
		t.Errorf("kuma-sidecar runs as %d:%d", *sidecar.RunAsUser, *sidecar.RunAsGroup)
	}

	res, err = injectPod(t, appPod(nil), true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Pod.Spec.InitContainers {
		if c.Name != "app" {
			unprivileged(t, c.Name+" in CNI mode", c.SecurityContext, nil)
		}
	}
	// The validation container acts as the proxy, as Kuma's does, to prove the inbound capture.
	if v := podkit.MustContainer(t, res.Pod, inject.ValidationName).SecurityContext; *v.RunAsUser != 5678 || *v.RunAsGroup != 5678 {
		t.Errorf("kuma-validation runs as %d:%d", *v.RunAsUser, *v.RunAsGroup)
	}
}

// TestAnnotationsCannotRaisePrivilege: no annotation changes who the injected containers run as
// or what they may do; the ones meshinit does not read are warned about, not obeyed.
func TestAnnotationsCannotRaisePrivilege(t *testing.T) {
	base, err := injectPod(t, appPod(nil), false)
	if err != nil {
		t.Fatal(err)
	}
	hostile := map[string]string{
		// Every annotation meshinit reads, at its most permissive.
		api.AnnotationExcludeInboundPorts: "1-65535", api.AnnotationExcludeOutboundPorts: "1-65535",
		api.AnnotationExcludeOutboundPortsForUIDs: "*:*:0-2147483647", api.AnnotationIPFamilyMode: "ipv6",
		api.AnnotationIPTablesLogs: "true", api.AnnotationGateway: "enabled", api.AnnotationInitFirst: "true",
		api.AnnotationSidecarEnvVars: "KUMA_DATAPLANE_RUNTIME_UID=0", api.AnnotationBuiltinDNSPort: "22",
		api.AnnotationSidecarConcurrency: "4294967295", api.AnnotationEnvoyAdminPort: "1", api.AnnotationEnvoyLogLevel: "trace",
		api.AnnotationEnvoyComponentLogLevel: "admin:trace",
		// Names that would be dangerous if they were read.
		"kuma.io/sidecar-uid": "0", "kuma.io/init-container-privileged": "true", "kuma.io/sidecar-privileged": "true",
	}
	res, err := injectPod(t, appPod(hostile), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{inject.InitName, inject.SidecarName} {
		want, got := podkit.MustContainer(t, base.Pod, name).SecurityContext, podkit.MustContainer(t, res.Pod, name).SecurityContext
		if want.String() != got.String() {
			t.Errorf("%s's security context changed by annotations:\n%v\nwas\n%v", name, got, want)
		}
	}
	for _, unread := range []string{"kuma.io/sidecar-uid", "kuma.io/init-container-privileged", "kuma.io/sidecar-privileged"} {
		if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, unread) }) {
			t.Errorf("no warning that %s is not read: %v", unread, res.Warnings)
		}
	}
	cfg, err := api.ParseTransparentProxyConfig([]byte(res.Pod.Annotations[api.AnnotationTransparentProxyConfig]))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.KumaDPUser != "5678" {
		t.Errorf("the proxy's user became %q", cfg.KumaDPUser)
	}
}

// TestPodsCannotEscape: an app container running as the sidecar's UID (whose traffic is never
// redirected) is refused, at pod or container level, and pods on the host's network are never
// injected, so kuma-init never runs in the host's namespace.
func TestPodsCannotEscape(t *testing.T) {
	uid := int64(5678)
	asSidecar := appPod(nil)
	asSidecar.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid}
	var denial *inject.Denial
	if _, err := injectPod(t, asSidecar, false); !errors.As(err, &denial) || denial.Reason != inject.ReasonSidecarUID {
		t.Errorf("a pod running as the sidecar's UID: %v", err)
	}
	asSidecar = appPod(nil)
	asSidecar.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: &uid}
	if _, err := injectPod(t, asSidecar, false); !errors.As(err, &denial) || denial.Reason != inject.ReasonSidecarUID {
		t.Errorf("a container running as the sidecar's UID: %v", err)
	}
	host := appPod(nil)
	host.Spec.HostNetwork = true
	if res, err := injectPod(t, host, false); err != nil || res.Injected || res.Reason != inject.ReasonHostNetwork {
		t.Errorf("a host-network pod: %+v, %v", res, err)
	}
}

// TestEscapesAreRefusedOrWarned: a container with the sidecar's name in a pod that is not
// injected is refused, since it would be taken for injected and get no rules; the injected marker
// set by hand is no opt-out, as in Kuma: the pod is injected, with a warning; a container that may
// switch to the sidecar's UID is warned about, and so is the marker on a pod left uninjected.
func TestEscapesAreRefusedOrWarned(t *testing.T) {
	forged := appPod(nil)
	forged.Spec.Containers = append(forged.Spec.Containers, corev1.Container{Name: inject.SidecarName, Image: "busybox"})
	var denial *inject.Denial
	if _, err := injectPod(t, forged, false); !errors.As(err, &denial) || denial.Reason != inject.ReasonSidecarNotInjected {
		t.Errorf("a kuma-sidecar container in a pod not injected: %v", err)
	}
	nonRoot := func(p *corev1.Pod) *corev1.Pod {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
		return p
	}
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		inject bool
		reason string
	}{
		{"the marker set by hand", nonRoot(appPod(map[string]string{api.AnnotationSidecarInjected: "true"})), true, inject.ReasonInjectedMarker},
		{"a container that may run as root", appPod(nil), true, inject.ReasonMayChangeUID},
		{"the marker on a pod disabled by its label", func() *corev1.Pod {
			p := nonRoot(appPod(map[string]string{api.AnnotationSidecarInjected: "true"}))
			p.Labels = map[string]string{api.LabelSidecarInjection: "disabled"}
			return p
		}(), false, inject.ReasonInjectedMarker},
	} {
		res, err := injectPod(t, tc.pod, false)
		if err != nil || res.Injected != tc.inject || !slices.Equal(res.Escapes, []string{tc.reason}) || len(res.Warnings) == 0 {
			t.Errorf("%s: %+v, %v", tc.name, res, err)
		}
	}
	if res, err := injectPod(t, nonRoot(appPod(nil)), false); err != nil || len(res.Escapes) > 0 {
		t.Errorf("a pod that runs as no root: %+v, %v", res, err)
	}
}

// TestInjectedPodsKeepTheirConfiguration: the chart's admission policy refuses, on every pod,
// updates of the configuration and the marker, by anyone but the injector's account, failing
// closed; the injector seals the document's digest into every container it adds, which kuma-init,
// the validator and kuma-cni check (test/protection proves both through a real API server and the
// real binaries).
func TestInjectedPodsKeepTheirConfiguration(t *testing.T) {
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", nil)
	policy := chartcases.Find[admissionregistrationv1.ValidatingAdmissionPolicy](t, objs, "ValidatingAdmissionPolicy", "meshinit-injected-pods")
	binding := chartcases.Find[admissionregistrationv1.ValidatingAdmissionPolicyBinding](t, objs, "ValidatingAdmissionPolicyBinding", "meshinit-injected-pods")
	if *policy.Spec.FailurePolicy != admissionregistrationv1.Fail || !slices.Equal(binding.Spec.ValidationActions, []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}) ||
		binding.Spec.MatchResources != nil || binding.Spec.ParamRef != nil {
		t.Errorf("the policy does not deny, closed, everywhere: %+v %+v", policy.Spec.FailurePolicy, binding.Spec)
	}
	if rules := policy.Spec.MatchConstraints.ResourceRules; len(rules) != 1 || !slices.Equal(rules[0].Resources, []string{"pods", "pods/ephemeralcontainers"}) ||
		!slices.Equal(rules[0].Operations, []admissionregistrationv1.OperationType{admissionregistrationv1.Update}) {
		t.Errorf("the policy matches %+v", rules)
	}
	if c := policy.Spec.MatchConditions; len(c) != 1 || c[0].Expression != "request.userInfo.username != 'system:serviceaccount:kuma-system:meshinit-injector'" {
		t.Errorf("the policy exempts %+v, want the injector's account alone", c)
	}
	for _, cni := range []bool{false, true} {
		res, err := injectPod(t, appPod(nil), cni)
		if err != nil {
			t.Fatal(err)
		}
		want := corev1.EnvVar{Name: admitted.Env, Value: admitted.Digest([]byte(res.Pod.Annotations[api.AnnotationTransparentProxyConfig]))}
		for _, name := range []string{inject.SidecarName, map[bool]string{false: inject.InitName, true: inject.ValidationName}[cni]} {
			if !slices.Contains(podkit.MustContainer(t, res.Pod, name).Env, want) {
				t.Errorf("CNI mode %v: %s does not carry the admitted document's digest", cni, name)
			}
		}
	}
}

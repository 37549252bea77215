package inject

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
)

// Names of what the injector adds to pods.
const (
	SidecarName    = api.ContainerSidecar
	InitName       = api.ContainerInit
	ValidationName = api.ContainerValidation
)

// Injector injects pods with the cluster's defaults. NativeSidecars says whether kuma-sidecar is
// placed as an init container with restartPolicy: Always (API servers 1.29+).
type Injector struct {
	Config         *config.Config
	NativeSidecars bool
	// Cluster reads Kuma's ConfigMaps and ContainerPatch objects; nil is a cluster without any.
	Cluster Cluster
}

// Result is the outcome of Inject for a pod that is not denied.
type Result struct {
	// Pod is the injected pod, or the pod unchanged when it is not injected.
	Pod      *corev1.Pod
	Injected bool
	// Reason says why; one of the Reason constants.
	Reason   string
	Warnings []string
	// Escapes are the reasons of the escapes warned about (see escapes).
	Escapes []string
	// Settings says where each setting of an injected pod came from.
	Settings []Setting
}

// Denial refuses a pod, with a message for whoever created it.
type Denial struct {
	Reason  string
	Message string
}

func (d *Denial) Error() string { return d.Message }

// Inject returns the pod injected, or unchanged with the reason it is not, or a *Denial. namespace
// is the pod's namespace and nsLabels its labels. The pod passed in is not modified.
func (in *Injector) Inject(pod *corev1.Pod, namespace string, nsLabels map[string]string) (*Result, error) {
	d, err := in.decide(pod, namespace, nsLabels)
	if err != nil {
		return nil, err
	}
	if !d.inject {
		warnings, escapes, err := in.checkEscapes(pod, d, false)
		if err != nil {
			return nil, err
		}
		return &Result{Pod: pod, Reason: d.reason, Warnings: slices.Concat(d.warnings, warnings), Escapes: escapes}, nil
	}
	out := pod.DeepCopy()
	probes := in.collectProbes(out)
	res, err := in.resolve(out, nsLabels, probes)
	if err != nil {
		return nil, err
	}
	escapeWarnings, escapes, err := in.checkEscapes(pod, d, res.initFirst)
	if err != nil {
		return nil, err
	}
	uidWarnings, err := in.checkUIDs(out, res.initFirst)
	if err != nil {
		return nil, err
	}
	if res.probeProxyPort != 0 {
		if err := probes.rewrite(res.probeProxyPort); err != nil {
			return nil, err
		}
	}
	if err := in.checkAppPorts(pod, res); err != nil {
		return nil, err
	}
	if res.initFirst && !in.NativeSidecars && len(pod.Spec.InitContainers) > 0 {
		res.warnings = append(res.warnings, api.AnnotationInitFirst+": the pod's init containers run after kuma-init but before the "+
			"sidecar starts, so their outbound traffic goes to a proxy that is not running yet (native sidecars, on Kubernetes 1.29+, avoid this)")
	}
	if pod.Spec.Resources != nil {
		res.warnings = append(res.warnings, "the pod sets resources for all its containers (spec.resources): kuma-sidecar and "+
			"kuma-init get none of their own, which the API server would hold against the pod's; leave room in the pod's for the sidecar")
	}
	doc, err := res.tp.MarshalCompact()
	if err != nil {
		return nil, fmt.Errorf("marshalling the effective configuration: %w", err)
	}
	a := in.build(out, res)
	if err := patchContainers(&a, res); err != nil {
		return nil, err
	}
	if err := checkNames(pod, a); err != nil {
		return nil, err
	}
	seal(&a, doc)
	in.place(out, a, res.initFirst)
	annotated := in.annotate(out, res, string(doc))
	if err := checkAnnotationSize(out); err != nil {
		return nil, err
	}
	warnings := slices.Concat(d.warnings, probes.warnings, res.warnings, uidWarnings, escapeWarnings, annotated)
	if w := sizeWarning(pod, out); w != "" {
		warnings = append(warnings, w)
	}
	return &Result{Pod: out, Injected: true, Reason: d.reason, Settings: res.settings, Warnings: warnings, Escapes: escapes}, nil
}

// checkUIDs refuses the pod's containers that run as the sidecar's UID while the rules are in
// place: their traffic is the proxy's to the rules, so it would bypass the proxy. The app's
// containers and native sidecars always run then; its init containers, when the rules come first
// (rulesBefore). An init container that runs before kuma-init is only warned about, as in Kuma:
// its traffic is not redirected anyway.
func (in *Injector) checkUIDs(pod *corev1.Pod, initFirst bool) ([]string, error) {
	uid := in.Config.Injector.SidecarContainer.UID
	var podUID *int64
	if pod.Spec.SecurityContext != nil {
		podUID = pod.Spec.SecurityContext.RunAsUser
	}
	runsAsSidecar := func(c *corev1.Container) bool {
		runAs := podUID
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			runAs = c.SecurityContext.RunAsUser
		}
		return runAs != nil && *runAs == uid
	}
	var warnings []string
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		switch {
		case !runsAsSidecar(c):
		case isNativeSidecar(c) || in.rulesBefore(initFirst):
			return nil, &Denial{Reason: ReasonSidecarUID, Message: fmt.Sprintf(
				"init container %q runs as UID %d, the sidecar's, whose traffic is never redirected, and it runs while the rules are in place: "+
					"it would bypass the proxy; run it as another user", c.Name, uid)}
		default:
			warnings = append(warnings, fmt.Sprintf("init container %q runs as UID %d, the sidecar's, whose traffic is never redirected: "+
				"it runs before kuma-init installs the rules, so nothing bypasses the proxy now, but it would with %s or native sidecars (Kubernetes 1.29+)",
				c.Name, uid, api.AnnotationInitFirst))
		}
	}
	for i := range pod.Spec.Containers {
		if c := &pod.Spec.Containers[i]; runsAsSidecar(c) {
			return nil, &Denial{Reason: ReasonSidecarUID, Message: fmt.Sprintf(
				"container %q runs as UID %d, the sidecar's, whose traffic is never redirected: it would bypass the proxy; run it as another user",
				c.Name, uid)}
		}
	}
	return warnings, nil
}

// annotate records the injection and the effective configuration on the pod, with the
// annotations Kuma 2.9-2.14's pod converter builds the Dataplane from, in the forms it takes;
// 3.0 reads kuma-dp's --transparent-proxy-config instead. It returns warnings about the pod's own
// values it replaced.
func (in *Injector) annotate(pod *corev1.Pod, res *resolved, doc string) []string {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	a := pod.Annotations
	tp := res.tp
	var warnings []string
	// Annotations only the injector writes, which the pod may have been given by hand.
	for _, w := range [...]struct{ key, value string }{
		{api.AnnotationInboundPort, strconv.Itoa(int(tp.Redirect.Inbound.Port))},
		{api.AnnotationOutboundPort, strconv.Itoa(int(tp.Redirect.Outbound.Port))},
		{api.AnnotationSidecarUID, strconv.FormatInt(in.Config.Injector.SidecarContainer.UID, 10)},
	} {
		if old, ok := a[w.key]; ok && old != w.value {
			warnings = append(warnings, fmt.Sprintf("annotation %s is the injector's to write: the pod's %q is replaced by %q", w.key, old, w.value))
		}
		a[w.key] = w.value
	}
	a[api.AnnotationSidecarInjected] = "true"
	a[api.AnnotationTransparentProxying] = "enabled"
	// Kuma's ipFamilyMode, which has no ipv6: meshinit.ipFamilyMode says that.
	if old := a[api.AnnotationIPFamilyMode]; tp.Family() == api.IPFamilyIPv6 && strings.TrimSpace(old) != "" {
		warnings = append(warnings, fmt.Sprintf("%s: %q is written as %s, the nearest mode Kuma's pod converter takes; the rules redirect IPv6 "+
			"only, as the configuration's meshinit.ipFamilyMode says", api.AnnotationIPFamilyMode, old, tp.IPFamilyMode))
	}
	a[api.AnnotationIPFamilyMode] = string(tp.IPFamilyMode)
	a[api.AnnotationEnvoyAdminPort] = strconv.Itoa(int(res.sidecar.adminPort))
	if tp.Redirect.DNS.Enabled {
		a[api.AnnotationBuiltinDNS] = "enabled"
		a[api.AnnotationBuiltinDNSPort] = strconv.Itoa(int(tp.Redirect.DNS.Port))
	}
	a[api.AnnotationApplicationProbeProxyPort] = strconv.Itoa(int(res.probeProxyPort))
	// The converter takes a gateway's enabled, and refuses any other value but provided, which is
	// for gateways it deploys itself.
	if text, ok := a[api.AnnotationGateway]; ok {
		switch {
		case !tp.Redirect.Inbound.Enabled && text != "enabled":
			warnings = append(warnings, fmt.Sprintf("%s: %q is written as enabled, the value Kuma's pod converter takes", api.AnnotationGateway, text))
			a[api.AnnotationGateway] = "enabled"
		case tp.Redirect.Inbound.Enabled:
			warnings = append(warnings, fmt.Sprintf("%s: %q is removed: Kuma's pod converter refuses it, and without it the pod is not a gateway",
				api.AnnotationGateway, text))
			delete(a, api.AnnotationGateway)
		}
	}
	a[api.AnnotationTransparentProxyConfig] = doc
	if in.Config.Injector.CNIEnabled {
		// Multus attaches the listed networks; others' entries stay.
		a[api.AnnotationMultusNetworks] = res.networks
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[api.LabelMesh] = res.mesh
	return warnings
}

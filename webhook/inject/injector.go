package inject

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/config"
)

// Names of what the injector adds to pods.
const (
	SidecarName    = "kuma-sidecar"
	InitName       = "kuma-init"
	ValidationName = "kuma-validation"

	// The effective configuration reaches kuma-init as a file, projected from the annotation.
	configVolume    = "kuma-transparent-proxy-config"
	ConfigMountPath = "/var/run/kuma.io/transparent-proxy"
	ConfigFile      = "config.yaml"
	tmpVolume       = "kuma-sidecar-tmp"
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
		return &Result{Pod: pod, Reason: d.reason, Warnings: d.warnings}, nil
	}
	out := pod.DeepCopy()
	if err := in.checkUIDs(out); err != nil {
		return nil, err
	}
	probes := in.collectProbes(out)
	res, err := in.resolve(out, nsLabels, probes.ports())
	if err != nil {
		return nil, err
	}
	if res.probeProxyPort != 0 {
		probes.rewrite(res.probeProxyPort)
	}
	if res.initFirst && !in.NativeSidecars && len(pod.Spec.InitContainers) > 0 {
		res.warnings = append(res.warnings, api.AnnotationInitFirst+": the pod's init containers run after kuma-init but before the "+
			"sidecar starts, so their outbound traffic goes to a proxy that is not running yet (native sidecars, on Kubernetes 1.29+, avoid this)")
	}
	doc, err := res.tp.MarshalCompact()
	if err != nil {
		return nil, fmt.Errorf("marshalling the effective configuration: %w", err)
	}
	a := in.build(out, res)
	if err := patchContainers(&a, res); err != nil {
		return nil, err
	}
	in.place(out, a, res.initFirst)
	in.annotate(out, res, string(doc))
	warnings := slices.Concat(d.warnings, probes.warnings, res.warnings)
	if w := sizeWarning(pod, out); w != "" {
		warnings = append(warnings, w)
	}
	return &Result{Pod: out, Injected: true, Reason: d.reason, Settings: res.settings, Warnings: warnings}, nil
}

// checkUIDs refuses app containers that run as the sidecar's UID: their traffic is the proxy's
// to the rules, so it would bypass the proxy.
func (in *Injector) checkUIDs(pod *corev1.Pod) error {
	uid := in.Config.Injector.SidecarContainer.UID
	var podUID *int64
	if pod.Spec.SecurityContext != nil {
		podUID = pod.Spec.SecurityContext.RunAsUser
	}
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		runAs := podUID
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			runAs = c.SecurityContext.RunAsUser
		}
		if runAs != nil && *runAs == uid {
			return &Denial{Reason: ReasonSidecarUID, Message: fmt.Sprintf(
				"container %q runs as UID %d, the sidecar's, whose traffic is never redirected: it would bypass the proxy; run it as another user",
				c.Name, uid)}
		}
	}
	return nil
}

// annotate records the injection and the effective configuration on the pod.
func (in *Injector) annotate(pod *corev1.Pod, res *resolved, doc string) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[api.AnnotationSidecarInjected] = "true"
	pod.Annotations[api.AnnotationTransparentProxying] = "enabled"
	pod.Annotations[api.AnnotationTransparentProxyConfig] = doc
	if in.Config.Injector.CNIEnabled {
		// Multus attaches the listed networks; others' entries stay.
		networks := pod.Annotations[api.AnnotationMultusNetworks]
		if !slices.Contains(strings.Split(strings.ReplaceAll(networks, " ", ""), ","), cni.NetworkName) {
			networks = strings.TrimPrefix(networks+", "+cni.NetworkName, ", ")
		}
		pod.Annotations[api.AnnotationMultusNetworks] = networks
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[api.LabelMesh] = res.mesh
}

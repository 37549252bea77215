package inject

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
)

// Reasons an injection ends the way it does; they label the sidecar_injection_total metric and
// the logs.
const (
	ReasonEnabledByPodLabel       = "enabled-by-pod-label"
	ReasonEnabledByNamespaceLabel = "enabled-by-namespace-label"

	ReasonNotEnabled               = "not-enabled"
	ReasonDisabledByPodLabel       = "disabled-by-pod-label"
	ReasonDisabledByNamespaceLabel = "disabled-by-namespace-label"
	ReasonKubeSystem               = "kube-system"
	ReasonSystemNamespace          = "injector-namespace"
	ReasonHostNetwork              = "host-network"
	ReasonAlreadyInjected          = "already-injected"
	ReasonExceptionLabel           = "exception-label"

	ReasonInvalidLabel      = "invalid-label"
	ReasonInvalidAnnotation = "invalid-annotation"
	ReasonSidecarUID        = "sidecar-uid"
	ReasonProbePort         = "probe-on-proxy-port"
)

// decision is whether a pod is injected, and why.
type decision struct {
	inject   bool
	reason   string
	warnings []string
}

// decide applies the rules of selection in order: namespaces never injected, pods that cannot or
// must not be, then the injection label, the pod's over its namespace's.
func (in *Injector) decide(pod *corev1.Pod, namespace string, nsLabels map[string]string) (decision, error) {
	var warnings []string
	// kuma-dp before 3.0 reads kuma.io/mesh as an annotation too; resolve says how.
	meshAnnotation := !in.Config.Injector.SidecarContainer.KumaDPVersion.AtLeast(3, 0)
	for _, k := range settings.Keys() {
		if _, ok := pod.Annotations[k.Name]; ok && k.Kind == settings.KindLabel && !(k.Name == api.LabelMesh && meshAnnotation) {
			warnings = append(warnings, fmt.Sprintf("annotation %s has no effect: it is read as a label", k.Name))
		}
	}
	skip := func(reason string) (decision, error) { return decision{reason: reason, warnings: warnings}, nil }
	switch namespace {
	case "kube-system":
		return skip(ReasonKubeSystem)
	case in.Config.SystemNamespace:
		return skip(ReasonSystemNamespace)
	}
	enabled, source, err := injectionLabel(pod.Labels, nsLabels, namespace)
	if err != nil {
		return decision{}, err
	}
	switch {
	case pod.Spec.HostNetwork:
		if enabled {
			warnings = append(warnings, "pods with hostNetwork: true are never injected: their rules would apply to the node")
		}
		return skip(ReasonHostNetwork)
	case hasSidecar(pod) && pod.Annotations[api.AnnotationSidecarInjected] == "true":
		// Injected by Kuma's injector, or by this one before a reinvocation; a kuma-sidecar
		// without the mark is an escape (see escapes).
		return skip(ReasonAlreadyInjected)
	case exceptionLabel(pod.Labels, in.Config.Exceptions.Labels):
		return skip(ReasonExceptionLabel)
	case source == "":
		return skip(ReasonNotEnabled)
	case !enabled && source == "pod":
		return skip(ReasonDisabledByPodLabel)
	case !enabled:
		return skip(ReasonDisabledByNamespaceLabel)
	case source == "pod":
		return decision{inject: true, reason: ReasonEnabledByPodLabel, warnings: warnings}, nil
	}
	return decision{inject: true, reason: ReasonEnabledByNamespaceLabel, warnings: warnings}, nil
}

// injectionLabel reads kuma.io/sidecar-injection from the pod, then its namespace; source is
// "pod", "namespace", or empty when neither has it. A malformed value is an error naming where it
// is: it is an operator's decision that cannot be read.
func injectionLabel(podLabels, nsLabels map[string]string, namespace string) (enabled bool, source string, err error) {
	for _, l := range []struct {
		labels map[string]string
		source string
		field  string
	}{
		{podLabels, "pod", "pod label " + api.LabelSidecarInjection},
		{nsLabels, "namespace", fmt.Sprintf("label %s of namespace %s", api.LabelSidecarInjection, namespace)},
	} {
		if v, ok := l.labels[api.LabelSidecarInjection]; ok {
			enabled, err := api.ParseSwitch(v)
			if err != nil {
				return false, "", &Denial{Reason: ReasonInvalidLabel, Message: err.(*api.FieldError).In(l.field).Error()}
			}
			return enabled, l.source, nil
		}
	}
	return false, "", nil
}

func hasSidecar(pod *corev1.Pod) bool {
	named := func(c corev1.Container) bool { return c.Name == SidecarName }
	return slices.ContainsFunc(pod.Spec.Containers, named) || slices.ContainsFunc(pod.Spec.InitContainers, named)
}

// exceptionLabel reports whether the pod has one of the labels whose pods are never injected; the
// value "*" matches any value.
func exceptionLabel(labels, exceptions map[string]string) bool {
	for key, want := range exceptions {
		if v, ok := labels[key]; ok && (want == "*" || want == v) {
			return true
		}
	}
	return false
}

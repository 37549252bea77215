package inject

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
)

// Reasons of the escapes admission sees: ways a pod's spec would leave its traffic outside the
// mesh without saying so.
const (
	// ReasonSidecarNotInjected refuses a pod that has a container of the sidecar's name but was
	// not injected: it would be taken for injected, and left without rules.
	ReasonSidecarNotInjected = "sidecar-without-injection"
	// ReasonInjectedMarker warns of kuma.io/sidecar-injected set by the pod's author, which is
	// the injector's to write, not an opt-out.
	ReasonInjectedMarker = "injected-marker-preset"
	// ReasonMayChangeUID warns of an app container that may switch to the sidecar's UID.
	ReasonMayChangeUID = "may-change-uid"
)

// escape is one way out of the mesh that admission can see, and what meshinit does about it: a
// refused escape denies the pod with its message; the others are admission warnings, each saying
// why it is not refused. find returns the messages for the pod, before injection; onSkipped
// runs it also for pods that are not injected.
type escape struct {
	reason    string
	refused   bool
	onSkipped bool
	find      func(in *Injector, pod *corev1.Pod, d decision, initFirst bool) []string
}

var escapes = [...]escape{
	{reason: ReasonSidecarNotInjected, refused: true, find: (*Injector).sidecarNotInjected},
	{reason: ReasonInjectedMarker, onSkipped: true, find: (*Injector).presetMarker},
	{reason: ReasonMayChangeUID, find: (*Injector).mayChangeUID},
}

// checkEscapes runs the checks of escapes that apply to the decision: it returns a *Denial for
// the first refused one found, and otherwise the warnings and the reasons of those found.
func (in *Injector) checkEscapes(pod *corev1.Pod, d decision, initFirst bool) (warnings, reasons []string, err error) {
	for _, e := range escapes {
		if !d.inject && !e.onSkipped {
			continue
		}
		found := e.find(in, pod, d, initFirst)
		switch {
		case len(found) == 0:
		case e.refused:
			return nil, nil, &Denial{Reason: e.reason, Message: strings.Join(found, "\n")}
		default:
			warnings, reasons = append(warnings, found...), append(reasons, e.reason)
		}
	}
	return warnings, reasons, nil
}

// sidecarNotInjected: a container named kuma-sidecar in a pod that is not marked injected, which
// Kuma's injector, and meshinit's before, took for injected and left alone. An injected pod,
// Kuma's or meshinit's (seen again on reinvocation), has both.
func (in *Injector) sidecarNotInjected(pod *corev1.Pod, d decision, _ bool) []string {
	if !hasSidecar(pod) || pod.Annotations[api.AnnotationSidecarInjected] == "true" {
		return nil
	}
	return []string{fmt.Sprintf("container %q has the name of the sidecar the injector adds, but the pod is not injected (no %s: \"true\"): "+
		"it would be taken for injected and get no transparent-proxy rules; accepted: another name for the container, or the pod label "+
		"%s: disabled to leave the pod out of the mesh", SidecarName, api.AnnotationSidecarInjected, api.LabelSidecarInjection)}
}

// presetMarker: kuma.io/sidecar-injected given by the pod's author. Kuma's injector ignores it and
// injects the pod, and so does meshinit: the marker is what Kuma's control plane and kuma-cni
// know injected pods by, not a way to opt out. On a pod that is not injected, "true" tells them it
// is, and Kuma's control plane then serves a proxy the pod does not have.
func (in *Injector) presetMarker(pod *corev1.Pod, d decision, _ bool) []string {
	value, ok := pod.Annotations[api.AnnotationSidecarInjected]
	switch {
	case !ok:
		return nil
	case d.inject:
		return []string{fmt.Sprintf("annotation %s: %q is the injector's to write, not a way to opt out: the pod is injected, as Kuma's "+
			"injector injects it, with the annotation set to \"true\"; to leave a pod out of the mesh, label it %s: disabled",
			api.AnnotationSidecarInjected, value, api.LabelSidecarInjection)}
	case value == "true" && d.reason != ReasonAlreadyInjected:
		return []string{fmt.Sprintf("annotation %s: \"true\" tells Kuma's control plane and kuma-cni that the pod has a sidecar, but it is not "+
			"injected (%s): remove the annotation", api.AnnotationSidecarInjected, d.reason)}
	}
	return nil
}

// mayChangeUID: an app container that may switch to the sidecar's UID, whose traffic the rules
// never redirect, and so bypass the proxy, from the containers that run while the rules are in
// place (as checkUIDs). Only a warning: most images run as root unless the pod says otherwise, so
// refusing would refuse most pods, and Kuma admits them; the chart's admission policy refuses
// such ephemeral containers, which are added to running pods for debugging rather than deployed.
func (in *Injector) mayChangeUID(pod *corev1.Pod, _ decision, initFirst bool) []string {
	uid := in.Config.Injector.SidecarContainer.UID
	var out []string
	check := func(kind string, c *corev1.Container) {
		if why, fix := uidChange(pod.Spec.SecurityContext, c.SecurityContext); why != "" {
			out = append(out, fmt.Sprintf("%s %q may switch to UID %d, the sidecar's, whose traffic is never redirected, and so bypass the "+
				"proxy: %s; admitted, as Kuma admits it; to rule it out, %s", kind, c.Name, uid, why, fix))
		}
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; isNativeSidecar(c) || in.rulesBefore(initFirst) {
			check("init container", c)
		}
	}
	for i := range pod.Spec.Containers {
		check("container", &pod.Spec.Containers[i])
	}
	return out
}

// uidChange says how a container may change its UID, and how to rule that out, or "" when it
// cannot (as far as its spec tells: an image's setuid programs are not seen). Root may unless it
// lacks CAP_SETUID (dropped, with no privilege); a container may run as root when neither it nor
// its pod gives a runAsUser or runAsNonRoot: true; any user with CAP_SETUID given, or privileged,
// may too.
func uidChange(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) (why, fix string) {
	var runAsUser *int64
	nonRoot := false
	if pod != nil {
		runAsUser = pod.RunAsUser
		nonRoot = pod.RunAsNonRoot != nil && *pod.RunAsNonRoot
	}
	privileged := false
	var add, drop []corev1.Capability
	if c != nil {
		if c.RunAsUser != nil {
			runAsUser = c.RunAsUser
		}
		if c.RunAsNonRoot != nil {
			nonRoot = *c.RunAsNonRoot
		}
		privileged = c.Privileged != nil && *c.Privileged
		if c.Capabilities != nil {
			add, drop = c.Capabilities.Add, c.Capabilities.Drop
		}
	}
	const dropSetUID = "run it as another user (runAsNonRoot: true, or a runAsUser), or drop the SETUID capability (or ALL)"
	switch {
	case privileged:
		return "it is privileged, with every capability", "do not make it privileged"
	case slices.ContainsFunc(add, isSetUID):
		return "it is given the SETUID capability", "do not add SETUID (or ALL) to its capabilities"
	case slices.ContainsFunc(drop, isSetUID):
		return "", "" // root without CAP_SETUID cannot change its user
	case runAsUser != nil && *runAsUser == 0:
		return "it runs as root (runAsUser: 0), and root may switch users", dropSetUID
	case runAsUser == nil && !nonRoot:
		return "it may run as root (neither it nor its pod sets runAsNonRoot: true or a runAsUser, so its image decides), " +
			"and root may switch users", dropSetUID
	}
	return "", ""
}

// isSetUID reports whether a capability, as the runtime reads it (with or without CAP_, in any
// case), is SETUID or ALL.
func isSetUID(c corev1.Capability) bool {
	name := strings.TrimPrefix(strings.ToUpper(string(c)), "CAP_")
	return name == "SETUID" || name == "ALL"
}

package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/meshinit/meshinit/api"
)

// place puts the added containers and volumes into the pod, in Kuma's layout.
//
// Where the API server has native sidecars, kuma-init and then kuma-sidecar, an init container
// with restartPolicy: Always, come before the pod's own init containers: those run in the mesh,
// the sidecar starts before the app and does not keep Jobs from completing, and on stopping it
// drains (kuma-dp drains on SIGUSR2). Otherwise kuma-sidecar is the first of the containers, and
// kuma-init runs after the pod's own init containers, so that they run outside the mesh as they
// would without it, or first with kuma.io/init-first.
func (in *Injector) place(pod *corev1.Pod, a added, initFirst bool) {
	if len(pod.Spec.Containers) == 1 && pod.Annotations[api.AnnotationDefaultContainer] == "" {
		// kubectl logs and exec should reach the app, not the sidecar.
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[api.AnnotationDefaultContainer] = pod.Spec.Containers[0].Name
	}
	// Containers are large: each list is made once, at its size (BenchmarkHandler).
	inits := make([]corev1.Container, 0, len(pod.Spec.InitContainers)+2)
	ours := func(inits []corev1.Container) []corev1.Container {
		if a.init == nil {
			return inits
		}
		return append(inits, *a.init)
	}
	sidecarFirst := func() {
		pod.Spec.Containers = append(append(make([]corev1.Container, 0, len(pod.Spec.Containers)+1), a.sidecar), pod.Spec.Containers...)
	}
	switch {
	case in.NativeSidecars:
		a.sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		a.sidecar.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
			Exec: &corev1.ExecAction{Command: []string{"killall", "-USR2", "kuma-dp"}}}}
		inits = append(append(ours(inits), a.sidecar), pod.Spec.InitContainers...)
	case initFirst:
		sidecarFirst()
		inits = append(ours(inits), pod.Spec.InitContainers...)
	default:
		sidecarFirst()
		inits = ours(append(inits, pod.Spec.InitContainers...))
	}
	pod.Spec.InitContainers = inits
	pod.Spec.Volumes = slices.Concat(pod.Spec.Volumes, a.volumes)
}

// rulesBefore reports whether the rules are in place before the pod's own init containers run:
// in CNI mode, before any container; with native sidecars, or kuma.io/init-first, kuma-init runs
// first.
func (in *Injector) rulesBefore(initFirst bool) bool {
	return in.Config.Injector.CNIEnabled || in.NativeSidecars || initFirst
}

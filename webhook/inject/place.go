package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/meshinit/meshinit/api"
)

// place puts the added containers and volumes into the pod.
//
// kuma-init runs after the pod's own init containers, so that they run outside the mesh as they
// would without it, or first with kuma.io/init-first. Where the API server has native sidecars,
// kuma-sidecar is an init container with restartPolicy: Always right after kuma-init: it starts
// before the app containers and does not keep Jobs from completing. Otherwise it is the first of
// the containers.
func (in *Injector) place(pod *corev1.Pod, a added, initFirst bool) {
	if len(pod.Spec.Containers) == 1 && pod.Annotations[api.AnnotationDefaultContainer] == "" {
		// kubectl logs and exec should reach the app, not the sidecar.
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[api.AnnotationDefaultContainer] = pod.Spec.Containers[0].Name
	}
	ours := []corev1.Container{a.init}
	if in.NativeSidecars {
		a.sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
		ours = append(ours, a.sidecar)
	} else {
		pod.Spec.Containers = slices.Insert(pod.Spec.Containers, 0, a.sidecar)
	}
	if initFirst {
		pod.Spec.InitContainers = slices.Concat(ours, pod.Spec.InitContainers)
	} else {
		pod.Spec.InitContainers = slices.Concat(pod.Spec.InitContainers, ours)
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, a.volumes...)
}

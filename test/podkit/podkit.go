// Package podkit reads what tests look for in pods, as the injector or the API server left them.
package podkit

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Container returns the pod's init container or container of that name, or nil.
func Container(pod *corev1.Pod, name string) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// MustContainer is Container for a container the pod must have: its absence fails the test.
func MustContainer(t testing.TB, pod *corev1.Pod, name string) corev1.Container {
	t.Helper()
	c := Container(pod, name)
	if c == nil {
		t.Fatalf("the pod has no container %s", name)
	}
	return *c
}

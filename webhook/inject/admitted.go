package inject

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api/admitted"
)

// seal writes the digest of the configuration document into the environment of the containers
// injection adds, after their ContainerPatch operations: a container's environment cannot change
// once the pod exists, the annotation can, so kuma-init, the validation container and kuma-cni
// refuse a document that is not the one admitted (see package admitted).
func seal(a *added, doc []byte) {
	v := corev1.EnvVar{Name: admitted.Env, Value: admitted.Digest(doc)}
	for _, c := range []*corev1.Container{&a.sidecar, a.init} {
		if c == nil {
			continue
		}
		c.Env = append(slices.DeleteFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == admitted.Env }), v)
	}
}

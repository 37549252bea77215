package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// The API server stores a pod in one etcd request, as protobuf, and etcd refuses requests over
// its --max-request-bytes, 1.5 MiB by default, with "etcdserver: request is too large". Whether a
// cluster raised it (k3s's SQLite has no such limit) the injector cannot tell, so it warns rather
// than refuses.
const (
	etcdDefaultMaxRequest = 1536 << 10
	// sizeMargin is how near that limit a pod is warned about: the request also carries the
	// pod's key, and the API server sets a few fields after admission.
	sizeMargin = 16 << 10
)

// sizeWarning explains, for a pod that is injected near or over etcd's default limit, the error
// the API server may answer with; "" for every other pod. managedFields do not count: the webhook
// sees them, but the API server stored none for the largest pods (see TestLargestPod).
func sizeWarning(before, after *corev1.Pod) string {
	managed := after.ManagedFields
	after.ManagedFields = nil
	size := after.Size()
	after.ManagedFields = managed
	if size <= etcdDefaultMaxRequest-sizeMargin {
		return ""
	}
	return fmt.Sprintf("the pod, injected, is %d bytes as protobuf (injection added %d), near or over the %d that etcd stores by "+
		"default: if creating it fails with \"etcdserver: request is too large\", make the pod smaller, for instance by moving "+
		"environment variables into a ConfigMap", size, after.Size()-before.Size(), etcdDefaultMaxRequest)
}

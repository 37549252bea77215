// Package protection holds what the tests of the chart's ValidatingAdmissionPolicy share, through
// the API server kit here and on the real node (test/e2e): pods held before they start, the
// updates that rewrite what the injector wrote, and the policy's refusals word for word.
package protection

import (
	"encoding/json"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/poll"
)

// PolicyName is the chart's policy, and its binding, for release meshinit.
const PolicyName = "meshinit-injected-pods"

// GatedPod is a pod that the scheduler holds back until its gate is removed: the window in which
// its annotation could be rewritten before it starts, however long that is.
func GatedPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.PodSpec{
			SchedulingGates: []corev1.PodSchedulingGate{{Name: "example.com/hold"}},
			SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
			Containers:      []corev1.Container{{Name: "app", Image: "nginx", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}},
		},
	}
}

// Patch applies a JSON merge patch to a pod.
func Patch(t testing.TB, c client.Client, pod *corev1.Pod, p map[string]any) error {
	t.Helper()
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return c.Patch(t.Context(), pod.DeepCopy(), client.RawPatch(types.MergePatchType, data))
}

// Annotations is a merge patch that sets these annotations, key then value.
func Annotations(kv ...string) map[string]any {
	a := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		a[kv[i]] = kv[i+1]
	}
	return map[string]any{"metadata": map[string]any{"annotations": a}}
}

// Forged is a configuration that takes the pod out of the mesh: no inbound redirection, every
// outbound port excluded, no DNS.
const Forged = `{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false,"port":15006},"outbound":{"enabled":true,"port":15001,` +
	`"excludePortRanges":["1-65535"]},"dns":{"enabled":false,"port":15053}}}`

// WaitEnforced waits until the API server enforces the policy: a canary pod's configuration can
// no longer be rewritten. The API server loads a policy some time after it is applied.
func WaitEnforced(t testing.TB, c client.Client, canary *corev1.Pod) {
	t.Helper()
	// Each try writes another value: writing the same again changes nothing, which the policy lets through.
	try := 0
	poll.Until(t, "the API server enforces the policy", func() (bool, error) {
		try++
		err := Patch(t, c, canary, Annotations(api.AnnotationTransparentProxyConfig, fmt.Sprintf(`{"wait":%d}`, try)))
		return apierrors.IsForbidden(err), nil
	})
}

// Denied is the API server's refusal by the policy, as the client shows it.
func Denied(pod, message string) string {
	return fmt.Sprintf("pods %q is forbidden: ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s", pod, PolicyName, PolicyName, message)
}

// Marks is the policy's message when an update changes the annotations keys (comma-separated),
// the configuration document or the injected marker.
func Marks(keys string) string {
	return "annotation " + keys + " is the injector's, written when the pod was created, and cannot change: kuma-init, the " +
		"validation container, kuma-cni and Kuma's control plane act on it; accepted: an update that leaves it as it is " +
		"(recreate the pod to change it)"
}

// The policy's messages for an ephemeral container: "ephemeral container <name>", why it is
// refused, and EphemeralAccepted.
const (
	AsSidecarUID      = " runs as UID 5678, the pod's sidecar's, whose traffic is never redirected: it would bypass the proxy"
	EphemeralAccepted = "; accepted: an ephemeral container that runs as another user and cannot switch: runAsNonRoot: true or a runAsUser, " +
		"no SETUID capability added and no privilege, as kubectl debug --profile=restricted makes it"
)

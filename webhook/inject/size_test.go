package inject

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/testconfig"
)

// TestSizeWarning: a pod that injection takes near etcd's default limit is injected with a warning
// that explains the API server's "request is too large"; a smaller one gets none.
func TestSizeWarning(t *testing.T) {
	in := &Injector{Config: testconfig.Default(), NativeSidecars: true}
	for _, tc := range []struct {
		kib  int
		warn bool
	}{{1400, false}, {1530, true}, {2000, true}} {
		t.Run(fmt.Sprintf("%d KiB", tc.kib), func(t *testing.T) {
			// managedFields, which the API server may not store, do not count.
			managed := []metav1.ManagedFieldsEntry{{Manager: "kubectl", FieldsV1: metav1.NewFieldsV1(string(make([]byte, 200<<10)))}}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "big", Namespace: "demo", ManagedFields: managed},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
			value := strings.Repeat("x", 1000)
			for i := range tc.kib * 1024 / 1000 {
				pod.Spec.Containers[0].Env = append(pod.Spec.Containers[0].Env, corev1.EnvVar{Name: fmt.Sprintf("V%d", i), Value: value})
			}
			res, err := in.Inject(pod, "demo", map[string]string{api.LabelSidecarInjection: "enabled"})
			if err != nil || !res.Injected {
				t.Fatalf("not injected: %v", err)
			}
			bare := res.Pod.DeepCopy()
			bare.ManagedFields = nil
			want := fmt.Sprintf("the pod, injected, is %d bytes as protobuf (injection added %d), near or over the 1572864 that etcd stores by "+
				"default: if creating it fails with \"etcdserver: request is too large\", make the pod smaller, for instance by moving "+
				"environment variables into a ConfigMap", bare.Size(), res.Pod.Size()-pod.Size())
			if got := strings.Contains(strings.Join(res.Warnings, "\n"), want); got != tc.warn {
				t.Errorf("warnings %q; want the size warning: %v", res.Warnings, tc.warn)
			}
		})
	}
}

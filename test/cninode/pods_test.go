package cninode

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/webhook/inject"
)

// appImage is the pods' application: the echo test image, under a name nothing pulls.
const appImage = "meshinit.test/echo:cninode"

// meshedPod is a pod as the injector makes it in CNI mode (name empty: for a template): its
// validation container runs kumactl's validator as the sidecar's user, as Kuma's injector does.
func meshedPod(t *testing.T, cfg *config.Config, namespace, name string) *corev1.Pod {
	t.Helper()
	c := *cfg
	c.Injector.CNIEnabled = true
	// The node has two cores, and the test runs dozens of pods: their sidecars ask for little.
	c.Injector.SidecarContainer.Resources.RequestsCPU = resource.MustParse("1m")
	c.Injector.SidecarContainer.Resources.RequestsMemory = resource.MustParse("8Mi")
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{TerminationGracePeriodSeconds: ptr.To[int64](1),
			Containers: []corev1.Container{{Name: "app", Image: appImage, ImagePullPolicy: corev1.PullNever}}}}
	res, err := (&inject.Injector{Config: &c, NativeSidecars: true}).Inject(pod, namespace, map[string]string{api.LabelSidecarInjection: "enabled"})
	if err != nil || !res.Injected {
		t.Fatalf("injecting: %v %+v", err, res)
	}
	return res.Pod
}

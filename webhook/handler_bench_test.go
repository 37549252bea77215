package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

// benchPod has containers app containers with envs environment variables in all, each with a
// port and an HTTP readiness probe.
func benchPod(containers, envs int) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-", Namespace: "bench",
		Annotations: map[string]string{api.AnnotationExcludeOutboundPorts: "5432"}}}
	for i := range containers {
		c := corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "registry.example/app:1",
			Ports: []corev1.ContainerPort{{ContainerPort: int32(8080 + i)}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready", Port: intstr.FromInt32(int32(8080 + i))}}}}
		for j := range envs / containers {
			c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d_%d", i, j), Value: fmt.Sprintf("value-%d", j)})
		}
		pod.Spec.Containers = append(pod.Spec.Containers, c)
	}
	return pod
}

// BenchmarkHandler measures one admission, as the webhook server runs it: decoding the request,
// injecting, computing the JSON patch, and encoding the response. It reports the 99th percentile.
func BenchmarkHandler(b *testing.B) {
	for _, bc := range []struct {
		name             string
		containers, envs int
	}{
		{"typical-3-containers-20-env", 3, 20},
		{"large-64KB-1500-env", 3, 1500},
	} {
		b.Run(bc.name, func(b *testing.B) {
			scheme := runtime.NewScheme()
			clientgoscheme.AddToScheme(scheme)
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench", Labels: map[string]string{api.LabelSidecarInjection: "enabled"}}}
			h := &Handler{Injector: &inject.Injector{Config: testconfig.Default(), NativeSidecars: true},
				Namespaces: fake.NewClientBuilder().WithScheme(scheme).WithObjects(ns).Build(),
				Decoder:    admission.NewDecoder(scheme), Log: log.Log}
			raw, err := json.Marshal(benchPod(bc.containers, bc.envs))
			if err != nil {
				b.Fatal(err)
			}
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "bench",
				Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Operation: admissionv1.Create,
				Namespace: "bench", Object: runtime.RawExtension{Raw: raw}}}
			b.ReportAllocs()
			var took []time.Duration
			for b.Loop() {
				start := time.Now()
				resp := h.Handle(context.Background(), req)
				if len(resp.Patches) == 0 {
					b.Fatalf("not injected: %+v", resp.Result)
				}
				if _, err := json.Marshal(admissionv1.AdmissionReview{Response: &resp.AdmissionResponse}); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-us")
			b.ReportMetric(float64(len(raw))/1024, "pod-KB")
		})
	}
}

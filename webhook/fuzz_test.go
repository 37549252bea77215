package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

// fuzzNamespace is the namespace of fuzzed admissions, labelled for injection.
const fuzzNamespace = "demo"

// fuzzWebhook is the injector's webhook as NewManager registers it, body limits included, minus
// the TLS server: what the API server's requests reach.
func fuzzWebhook(tb testing.TB) http.Handler {
	tb.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fuzzNamespace, Labels: map[string]string{api.LabelSidecarInjection: "enabled"}}}
	return &guard{ledger: newLedger(bodyBudget, clientShare), bodyTimeout: time.Second, next: &crwebhook.Admission{Handler: &Handler{
		Injector:   &inject.Injector{Config: testconfig.Default(), NativeSidecars: true},
		Namespaces: fake.NewClientBuilder().WithScheme(scheme).WithObjects(ns).Build(),
		Decoder:    admission.NewDecoder(scheme),
		Log:        logr.Discard(),
	}}}
}

// admit posts body to the webhook as the API server does and returns its answer, which must be an
// AdmissionReview with a response whatever the body was.
func admit(t *testing.T, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil || review.Response == nil {
		t.Fatalf("HTTP %d, body %q is not an AdmissionReview with a response (%v); the request was\n%q", rec.Code, rec.Body, err, body)
	}
	res := review.Response
	if !res.Allowed && (res.Result == nil || res.Result.Message == "") {
		t.Fatalf("refused without a message: %+v; the request was\n%q", res, body)
	}
	if (res.PatchType == nil) != (res.Patch == nil) {
		t.Fatalf("patch type %v with patch %q", res.PatchType, res.Patch)
	}
	return res
}

// FuzzAdmissionReview posts any bytes to the webhook: it never panics and always answers with an
// AdmissionReview, allowed or refused with a message.
func FuzzAdmissionReview(f *testing.F) {
	h := fuzzWebhook(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		admit(t, h, body)
	})
}

// FuzzAdmissionPod puts any pod, with any annotation and label and a probe of its first container
// on any port, into a valid pod-creation review in a namespace labelled for injection: the webhook
// never panics, answers with the request's UID, fails no admission with an internal error, and a
// patch it returns applies to the pod, gives a pod, and leaves alone the probes whose port the API
// server refuses, so that it still refuses them.
func FuzzAdmissionPod(f *testing.F) {
	h := fuzzWebhook(f)
	f.Fuzz(func(t *testing.T, object []byte, annotation, value, label, labelValue string, probePort int32) {
		var pod corev1.Pod
		if json.Unmarshal(object, &pod) != nil {
			pod = corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}}}
		}
		if len(pod.Spec.Containers) > 0 && probePort != 0 {
			pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(probePort)}}}
		}
		if annotation != "" {
			metav1.SetMetaDataAnnotation(&pod.ObjectMeta, annotation, value)
		}
		if label != "" {
			metav1.SetMetaDataLabel(&pod.ObjectMeta, label, labelValue)
		}
		raw, err := json.Marshal(&pod)
		if err != nil {
			return
		}
		review, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "fuzz", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
				Operation: admissionv1.Create, Namespace: fuzzNamespace, Object: runtime.RawExtension{Raw: raw}},
		})
		if err != nil {
			t.Fatal(err)
		}
		res := admit(t, h, review)
		if res.UID != "fuzz" {
			t.Fatalf("answered with UID %q, want the request's", res.UID)
		}
		if res.Result != nil && res.Result.Code == http.StatusInternalServerError {
			t.Fatalf("internal error for\n%s\n%s", raw, res.Result.Message)
		}
		if res.Patch == nil {
			return
		}
		patch, err := jsonpatch.DecodePatch(res.Patch)
		if err != nil {
			t.Fatalf("patch %s: %v", res.Patch, err)
		}
		patched, err := patch.Apply(raw)
		if err != nil {
			t.Fatalf("patch %s does not apply to\n%s\n%v", res.Patch, raw, err)
		}
		var out corev1.Pod
		if err := json.Unmarshal(patched, &out); err != nil {
			t.Fatalf("the patched pod is not a pod: %v\n%s", err, patched)
		}
		for _, c := range pod.Spec.Containers {
			for _, o := range out.Spec.Containers {
				if o.Name == c.Name && refusedProbe(c) && !reflect.DeepEqual(o.ReadinessProbe, c.ReadinessProbe) {
					t.Fatalf("the readiness probe of %q, on a port the API server refuses, became\n%+v", c.Name, o.ReadinessProbe)
				}
			}
		}
	})
}

// refusedProbe reports whether the container's readiness probe is on a port number the API server
// refuses.
func refusedProbe(c corev1.Container) bool {
	p := c.ReadinessProbe
	if p == nil || p.TCPSocket == nil || p.TCPSocket.Port.Type != intstr.Int {
		return false
	}
	return p.TCPSocket.Port.IntVal < 1 || p.TCPSocket.Port.IntVal > 65535
}

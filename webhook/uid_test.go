package webhook

import (
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	sigsjson "sigs.k8s.io/json"
)

func TestRequestUID(t *testing.T) {
	long := strings.Repeat("u", maxUIDLength+1)
	for _, tc := range []struct{ prefix, want string }{
		// As the API server writes it, cut anywhere after the UID.
		{`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002","kind":{"gr`, "705ab4f5-6393-11e8-b7cc-42010a800002"},
		{`{"request":{"uid":"u1"}}`, "u1"},
		// Members before it are skipped, whatever they hold.
		{`{"apiVersion":"v1","x":[1,{"uid":"no"}],"request":{"kind":{"uid":"no"},"uid":"u2"`, "u2"},
		// Cut before the UID ends, or before it begins: none.
		{`{"kind":"AdmissionReview","request":{"uid":"705ab4f5`, ""},
		{`{"kind":"AdmissionReview","request":{"kin`, ""},
		{`{"request":{"uid":7}}`, ""},
		{`{"request":"uid"}`, ""},
		{`["request",{"uid":"u"}]`, ""},
		{`{"request":{"uid":"` + long + `"}}`, ""},
		{``, ""},
	} {
		if got := requestUID([]byte(tc.prefix)); got != tc.want {
			t.Errorf("requestUID(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// FuzzRequestUID: the UID found in any beginning of a body is the one the whole body gives, and
// the one a well-formed review holds, read as the API server reads it; it never panics.
func FuzzRequestUID(f *testing.F) {
	f.Add([]byte(`{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1","request":{"uid":"705ab4f5-6393-11e8-b7cc-42010a800002"}}`), 40)
	f.Add([]byte(`{"request":{"kind":{"uid":"x"},"uid":"y"}}`), 0)
	f.Fuzz(func(t *testing.T, body []byte, cut int) {
		uid := requestUID(body)
		// As the API server reads a review: keys match exactly, and each appears once.
		var review admissionv1.AdmissionReview
		if strict, err := sigsjson.UnmarshalStrict(body, &review); err == nil && len(strict) == 0 && uid != "" && (review.Request == nil || string(review.Request.UID) != uid) {
			t.Errorf("found %q in a review whose request is %+v", uid, review.Request)
		}
		if cut >= 0 && cut <= len(body) {
			if part := requestUID(body[:cut]); part != "" && part != uid {
				t.Errorf("found %q in the first %d bytes, %q in the whole", part, cut, uid)
			}
		}
	})
}

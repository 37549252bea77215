package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"golang.org/x/sync/semaphore"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// What one admission request may cost the injector. controller-runtime reads a body into memory,
// up to 7 MiB, before it looks at it, and waits for a body's end for as long as the client takes:
// a handful of large or endless bodies at once would take the injector past its memory limit,
// and a trickling one would hold its goroutine and buffer for ever.
const (
	// maxReviewBytes is controller-runtime's limit: room for an old and a new object of the 3 MiB
	// the API server accepts, and so more than the review of any pod's creation.
	maxReviewBytes = 7 << 20
	// bodyBudget is how many bytes of request bodies the injector reads at once: five reviews of
	// the largest pods the API server accepts, or thousands of ordinary ones. Reading a body costs
	// controller-runtime over twice its size in heap (TestBodyLimits measures the heap's growth),
	// and the chart gives the injector 256 MiB.
	bodyBudget = 16 << 20
	// readChunk bounds each read, so that no read asks the budget for more than it holds.
	readChunk = 64 << 10
)

// bodyTimeout is how long a body may take to arrive. The API server waits at most 30 seconds for
// an answer (timeoutSeconds' maximum), so a slower body comes from no API server. A variable, so
// that tests need not wait that long.
var bodyTimeout = 30 * time.Second

// bodies is the budget every admission request's body draws from.
var bodies = semaphore.NewWeighted(bodyBudget)

// limitBodies guards the webhook: a body that says it is over maxReviewBytes is refused before any
// of it is read; others are read from the budget, within bodyTimeout.
func limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxReviewBytes {
			refuse(w, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"the admission request is %d bytes, more than the %d (%d MiB) the injector reads; the API server sends no pod over 3 MiB",
				r.ContentLength, maxReviewBytes, maxReviewBytes>>20))
			return
		}
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		// A ResponseWriter that cannot take a deadline (a test's recorder) reads no network.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
		body := &budgetedBody{ReadCloser: r.Body}
		defer body.release()
		r.Body = body
		next.ServeHTTP(w, r)
	})
}

// budgetedBody is a request body that takes each byte it reads from the budget, and gives them
// back when the request is answered.
type budgetedBody struct {
	io.ReadCloser
	held int64
}

func (b *budgetedBody) Read(p []byte) (int, error) {
	p = p[:min(len(p), readChunk)]
	// Waiting for the budget would let bodies that each hold a part of it wait for one another.
	if !bodies.TryAcquire(int64(len(p))) {
		return 0, fmt.Errorf("the injector is already reading %d MiB of admission requests, as much as it holds at once; try again", bodyBudget>>20)
	}
	n, err := b.ReadCloser.Read(p)
	bodies.Release(int64(len(p) - n))
	b.held += int64(n)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("the admission request's body did not arrive within %s", bodyTimeout)
	}
	return n, err
}

func (b *budgetedBody) release() {
	bodies.Release(b.held)
	b.held = 0
}

// refuse answers with an AdmissionReview that refuses the request, as controller-runtime answers
// a request it cannot read.
func refuse(w http.ResponseWriter, code int32, message string) {
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: code, Message: message}},
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(int(code))
	_ = json.NewEncoder(w).Encode(review) // the client may be gone; there is no one else to tell
}

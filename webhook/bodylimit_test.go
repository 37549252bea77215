package webhook

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/testconfig"
)

// TestBodyLimits sends the injector's webhook server bodies no API server sends, over HTTP/2 as
// the API server does: each is refused with an AdmissionReview that says why, within bounded
// heap, and afterwards the webhook answers as before. Over HTTP/1.1 the server closes the
// connection on an endless upload, which the client may see before the answer, so only bodies
// with an end are sent that way. The peak heap growth of each is logged:
// go test ./webhook -run TestBodyLimits -v
func TestBodyLimits(t *testing.T) {
	env := kubeenv.Start(t)
	inj := startInjector(t, env, *testconfig.Default())
	defer func(d time.Duration) { bodyTimeout = d }(bodyTimeout)
	bodyTimeout = 2 * time.Second

	const (
		declared = "the admission request is 52428800 bytes, more than the 7340032 (7 MiB) the injector reads; the API server sends no pod over 3 MiB"
		tooLarge = "request entity is too large; limit is 7340032 bytes"
		budget   = "the injector is already reading 16 MiB of admission requests, as much as it holds at once; try again"
		slow     = "the admission request's body did not arrive within 2s"
	)
	for _, tc := range []struct {
		name    string
		proto   string
		body    func() io.Reader
		length  int64 // -1: unknown, sent chunked
		at0nce  int
		want    []string // any of
		maxHeap float64  // MiB
	}{
		{"50 MiB, length given", "HTTP/2.0", func() io.Reader { return io.LimitReader(spaces{}, 50<<20) }, 50 << 20, 1, []string{declared}, 4},
		{"endless", "HTTP/2.0", func() io.Reader { return spaces{} }, -1, 1, []string{tooLarge}, 40},
		{"20 endless at once", "HTTP/2.0", func() io.Reader { return spaces{} }, -1, 20, []string{tooLarge, budget}, 96},
		{"50 endless at once", "HTTP/2.0", func() io.Reader { return spaces{} }, -1, 50, []string{tooLarge, budget}, 96},
		{"trickling", "HTTP/2.0", func() io.Reader { return &trickle{} }, -1, 1, []string{slow}, 4},
		{"50 MiB, length given", "HTTP/1.1", func() io.Reader { return io.LimitReader(spaces{}, 50<<20) }, 50 << 20, 1, []string{declared}, 4},
		{"trickling", "HTTP/1.1", func() io.Reader { return &trickle{} }, -1, 1, []string{slow}, 4},
	} {
		t.Run(tc.proto+" "+tc.name, func(t *testing.T) {
			client := inj.clientFor(tc.proto)
			heap := watchHeap()
			var wg sync.WaitGroup
			for range tc.at0nce {
				wg.Go(func() {
					resp := post(t, client, inj.url, tc.body(), tc.length)
					if resp == nil || resp.Allowed || resp.Result == nil || !slices.Contains(tc.want, resp.Result.Message) {
						t.Errorf("answer %+v, want a refusal saying one of %q", resp, tc.want)
					}
				})
			}
			wg.Wait()
			peak := heap.stop()
			t.Logf("peak heap growth %.1f MiB", peak)
			if peak > tc.maxHeap {
				t.Errorf("the heap grew by %.1f MiB, more than %.0f MiB", peak, tc.maxHeap)
			}
		})
	}

	if !bodies.TryAcquire(bodyBudget) {
		t.Fatal("the body budget was not given back")
	}
	bodies.Release(bodyBudget)
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"after","kind":{"version":"v1","kind":"Service"},"operation":"CREATE"}}`
	if resp := post(t, inj.clientFor("HTTP/2.0"), inj.url, bytes.NewReader([]byte(review)), int64(len(review))); resp == nil || !resp.Allowed || resp.UID != "after" {
		t.Errorf("an ordinary review after them: %+v", resp)
	}
}

// clientFor is a client of the injector that speaks proto.
func (inj *testInjector) clientFor(proto string) *http.Client {
	tr := inj.client.Transport.(*http.Transport).Clone()
	if proto == "HTTP/2.0" {
		tr.ForceAttemptHTTP2 = true
	} else {
		tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: tr}
}

// post sends body as an admission request and returns the AdmissionReview's response, nil after
// reporting an answer that is not one.
func post(t *testing.T, client *http.Client, url string, body io.Reader, length int64) *admissionv1.AdmissionResponse {
	req, err := http.NewRequest(http.MethodPost, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = length
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("no answer: %v", err)
		return nil
	}
	defer resp.Body.Close()
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil || review.Response == nil {
		t.Errorf("HTTP %d, not an AdmissionReview with a response: %v", resp.StatusCode, err)
		return nil
	}
	return review.Response
}

// spaces is an endless JSON body: whitespace.
type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// trickle is a body that sends a byte every 100ms, for ever.
type trickle struct{ started bool }

func (tr *trickle) Read(p []byte) (int, error) {
	if tr.started {
		time.Sleep(100 * time.Millisecond)
	}
	tr.started = true
	p[0] = ' '
	return 1, nil
}

// heapWatch samples the heap in use until stopped.
type heapWatch struct {
	base, peak uint64
	done       chan struct{}
	wg         sync.WaitGroup
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h := &heapWatch{base: ms.HeapInuse, peak: ms.HeapInuse, done: make(chan struct{})}
	h.wg.Go(func() {
		ticker := time.NewTicker(2 * time.Millisecond)
		defer ticker.Stop()
		for {
			runtime.ReadMemStats(&ms)
			h.peak = max(h.peak, ms.HeapInuse)
			select {
			case <-h.done:
				return
			case <-ticker.C:
			}
		}
	})
	return h
}

// stop returns the peak growth, in MiB.
func (h *heapWatch) stop() float64 {
	close(h.done)
	h.wg.Wait()
	return float64(h.peak-h.base) / (1 << 20)
}

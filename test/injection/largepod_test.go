package injection

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/webhook"
)

// TestLargestPod creates, through the real API server, the largest pod it stores (etcd refuses
// requests over 1.5 MiB; the API server's own limit on a body, 3 MiB, is never the one reached).
// In a namespace without injection that pod is stored as it is. Injected, the injection takes it
// over etcd's limit: the API server refuses it, and the injector's warning says why. A pod with
// room for the injection is injected and stored. The pods' sizes and the injector's handling time
// of each are logged: go test ./test/injection -run TestLargestPod -v
func TestLargestPod(t *testing.T) {
	e := shared.Get(t)
	plain, meshed := namespace(t, nil), namespace(t, enabled)
	// The largest size in KiB of environment that the API server stores, between one it stores
	// and one it refuses.
	lo, hi := 1024, 1600
	for _, kib := range []int{lo, hi} {
		if err := create(t, e.Client, largePod(plain, kib)); (err == nil) != (kib == lo) {
			t.Fatalf("a pod with %d KiB of environment: %v", kib, err)
		}
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		if create(t, e.Client, largePod(plain, mid)) == nil {
			lo = mid
		} else {
			hi = mid
		}
	}
	largest := largePod(plain, lo)
	t.Logf("the largest pod stored has %d KiB of environment: %d bytes as protobuf", lo, largest.Size())

	warnings := &warningRecorder{}
	cfg := rest.CopyConfig(e.Rest)
	cfg.WarningHandler = warnings
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		kib    int
		stored bool
	}{
		{"the largest pod, injected", lo, false},
		{"a pod 16 KiB smaller, injected", lo - 16, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warnings.reset()
			p := largePod(meshed, tc.kib)
			took := handlingTime(t, func() { err = create(t, c, p) })
			t.Logf("the injector handled it in %s", took)
			switch {
			case tc.stored && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.stored && !injected(p):
				t.Fatalf("stored without injection")
			case !tc.stored && (err == nil || err.Error() != "etcdserver: request is too large"):
				t.Fatalf("error %v, want etcd's refusal", err)
			}
			if !strings.Contains(warnings.String(), `if creating it fails with "etcdserver: request is too large"`) {
				t.Errorf("the warnings %q do not explain etcd's refusal", warnings)
			}
		})
	}
}

// largePod is a pod with kib KiB of environment, in 1000-byte values.
func largePod(ns string, kib int) *corev1.Pod {
	p := pod(ns, nil, nil)
	value := strings.Repeat("x", 1000)
	for i := range kib * 1024 / 1000 {
		p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: fmt.Sprintf("V%d", i), Value: value})
	}
	return p
}

// create creates p, and deletes it again when it is not injected so that the namespace does not
// fill etcd.
func create(t *testing.T, c client.Client, p *corev1.Pod) error {
	t.Helper()
	err := c.Create(t.Context(), p)
	if err == nil && !injected(p) {
		if err := c.Delete(t.Context(), p); err != nil {
			t.Fatal(err)
		}
	}
	return err
}

// handlingTime is how long the injector spent on the admissions made by do, by
// controller-runtime's webhook latency histogram.
func handlingTime(t *testing.T, do func()) time.Duration {
	t.Helper()
	before := webhookSeconds(t)
	do()
	return time.Duration((webhookSeconds(t) - before) * float64(time.Second))
}

func webhookSeconds(t *testing.T) float64 {
	t.Helper()
	return metric(t, "controller_runtime_webhook_latency_seconds", map[string]string{"webhook": webhook.Path}).GetHistogram().GetSampleSum()
}

// warningRecorder keeps the warnings the API server passes on.
type warningRecorder struct {
	mu       sync.Mutex
	warnings []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, text)
}

func (w *warningRecorder) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = nil
}

func (w *warningRecorder) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.warnings, "\n")
}

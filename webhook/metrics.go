package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Results of an admission, the result label of sidecar_injection_total.
const (
	ResultInjected = "injected"
	ResultSkipped  = "skipped"
	ResultDenied   = "denied"
	ResultError    = "error"
)

// injections counts admissions by result and reason. It is registered with controller-runtime's
// registry, so /metrics serves it beside the webhook latency histogram
// (controller_runtime_webhook_latency_seconds).
var injections = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "sidecar_injection_total",
	Help: "Pod admissions by the sidecar injector, by result (injected, skipped, denied, error) and reason.",
}, []string{"result", "reason"})

func init() {
	metrics.Registry.MustRegister(injections)
}

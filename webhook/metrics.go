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

// The injector's metrics. They are registered with controller-runtime's registry, so /metrics
// serves them beside the webhook latency histogram (controller_runtime_webhook_latency_seconds).
var (
	// injections counts admissions by result and reason.
	injections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidecar_injection_total",
		Help: "Pod admissions by the sidecar injector, by result (injected, skipped, denied, error) and reason.",
	}, []string{"result", "reason"})
	// requestsRefused counts the requests the webhook server's guard answered itself.
	requestsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidecar_injector_requests_refused_total",
		Help: "Admission requests refused before injection, by reason: busy (the bytes all clients may hold at once are held), client-busy (those one client may hold), too-large, slow-body, unreadable.",
	}, []string{"reason"})
	// connectionsRefused counts the connections closed as soon as they were accepted.
	connectionsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sidecar_injector_connections_refused_total",
		Help: "Connections to the webhook closed at once, by reason: client-limit (that client's connections were all open), limit (all connections were).",
	}, []string{"reason"})
	// bodyBytes is what the guard's ledger holds.
	bodyBytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "sidecar_injector_request_body_bytes",
		Help: "Bytes of admission request bodies being read or handled.",
	})
)

func init() {
	metrics.Registry.MustRegister(injections, requestsRefused, connectionsRefused, bodyBytes)
}

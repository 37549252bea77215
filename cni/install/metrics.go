package install

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshinit/meshinit/cni/relay"
)

// metrics are install-cni's, and those of the kuma-cni calls on its node, which it learns of
// through its socket (package relay). Each installer has its own registry: tests run several.
type metrics struct {
	registry *prometheus.Registry
	commands *prometheus.CounterVec
	add      *prometheus.HistogramVec
	heals    *prometheus.CounterVec
	repairs  *prometheus.CounterVec
	ready    prometheus.Gauge
	// senderDropped are the records kuma-cni said it dropped; receiverDropped says how many the
	// relay did (set once it listens).
	senderDropped   atomic.Uint64
	receiverDropped atomic.Pointer[func() uint64]
}

// What a heal put back, the what label of kuma_cni_heals_total.
const (
	healBinary        = "binary"
	healConflist      = "conflist"
	healNetworkConfig = "network-config"
)

func newMetrics() *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kuma_cni_commands_total",
			Help: "kuma-cni's calls on this node by command (ADD, CHECK, DEL) and result: installed, skipped (not an injected pod) or failed for ADD; ok or failed otherwise.",
		}, []string{"command", "result"}),
		add: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kuma_cni_add_duration_seconds",
			Help:    "How long kuma-cni's ADD took on this node, pod lookup and rules included, by result.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			// Native buckets too, about 10% wide, for quantiles the classic ones cannot give.
			NativeHistogramBucketFactor: 1.1,
		}, []string{"result"}),
		heals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kuma_cni_heals_total",
			Help: "Times install-cni put kuma-cni back after it was installed, by what it put back: binary, conflist (kuma-cni's entry) or network-config (standalone).",
		}, []string{"what"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kuma_cni_repairs_total",
			Help: "Pods of this node repaired, by action (recreated, marked) and reason (validation-failed, setup-failed).",
		}, []string{"action", "reason"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kuma_cni_ready",
			Help: "1 while kuma-cni is installed on this node (install-cni's /ready says 200), 0 otherwise.",
		}),
	}
	dropped := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "kuma_cni_log_records_dropped_total",
		Help: "kuma-cni's log records and results that did not reach install-cni, its socket or queue being full; they are in the runtime's log.",
	}, func() float64 {
		n := m.senderDropped.Load()
		if f := m.receiverDropped.Load(); f != nil {
			n += (*f)()
		}
		return float64(n)
	})
	m.registry.MustRegister(m.commands, m.add, m.heals, m.repairs, m.ready, dropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// outcome counts one kuma-cni call.
func (m *metrics) outcome(o relay.Outcome) {
	m.commands.WithLabelValues(o.Command, o.Result).Inc()
	if o.Command == "ADD" {
		m.add.WithLabelValues(o.Result).Observe(o.Seconds)
	}
	m.senderDropped.Add(uint64(o.Dropped))
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Timeout: 10 * time.Second})
}

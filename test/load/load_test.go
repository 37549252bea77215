// Package load tests the injector's availability under load and faults, through a real API
// server with the injector binary registered by the chart's own webhook configuration: pods
// created in bulk, an injector replica stopped under load, the injector down, its certificate
// rotated while it serves. The tests assert what must hold (no create fails beyond what the
// failure policy says, every admitted pod is injected) and log what they measure, each line
// starting "figures:", for docs/reliability.md.
package load

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/binaries"
	testcluster "github.com/meshinit/meshinit/test/cluster"
	"github.com/meshinit/meshinit/test/scrape"
	"github.com/meshinit/meshinit/webhook"
)

// The size of the load: pods created in all, by as many concurrent clients, spread over as many
// labelled namespaces.
const (
	loadPods        = 1000
	loadConcurrency = 50
	loadNamespaces  = 5
)

// TestLoad creates pods through the API server into labelled namespaces: none may fail, and every
// pod must be stored injected. It reports the rate, the webhook's latency from the injector's own
// histogram, and the injector's admissions by result.
func TestLoad(t *testing.T) {
	ctx := t.Context()
	c := testcluster.New(ctx, t)
	inj := c.RunInjector(ctx, t, binaries.Build(t, "injector"), testcluster.InjectorOptions{Metrics: true, Args: []string{testcluster.NoDrain}})
	c.Register(ctx, t, inj.URL, nil)
	namespaces := meshedNamespaces(ctx, t, c.Client, "load", loadNamespaces)
	waitForInjection(ctx, t, c.Client, namespaces[0])

	before := scrape.Get(t, inj.MetricsURL)
	out := workload{namespaces: namespaces, concurrency: loadConcurrency, pods: loadPods}.run(ctx, unthrottled(t, c.Config))
	after := scrape.Get(t, inj.MetricsURL)

	t.Logf("figures: load: %s", out)
	logLatency(t, "load", before, after)
	t.Logf("figures: load: the injector's admissions by result: %v", injectionsSince(before, after))
	if out.failed() > 0 {
		t.Errorf("%d of %d creates failed", out.failed(), loadPods)
	}
	s := stored(ctx, t, c.Client, namespaces, out.created)
	if len(s.uninjected) > 0 || len(s.missing) > 0 {
		t.Errorf("of %d pods created, %d were stored without injection (%v) and %d were not found (%v)",
			len(out.created), len(s.uninjected), s.uninjected, len(s.missing), s.missing)
	}
}

// logLatency reports the webhook's p50 and p99 between two scrapes of the injector's histogram,
// from its native buckets (about 10% wide) and from its classic ones, which are a decade wide:
// interpolated linearly, as histogram_quantile does, they place every quantile between 1 and
// 10 ms at a value set by the bucket's bounds rather than by the observations.
func logLatency(t testing.TB, what string, before, after scrape.Metrics) {
	t.Helper()
	was, now := before.Histogram(latencyMetric, "webhook", webhook.Path), after.Histogram(latencyMetric, "webhook", webhook.Path)
	classic := classicBuckets(was, now)
	line := fmt.Sprintf("figures: %s: webhook latency (%s, %d requests): classic buckets p50 %s, p99 %s",
		what, latencyMetric, now.GetSampleCount()-was.GetSampleCount(), seconds(quantile(0.5, classic)), seconds(quantile(0.99, classic)))
	if native, err := nativeBuckets(was, now); err != nil {
		line += fmt.Sprintf("; native buckets: %v", err)
	} else {
		line += fmt.Sprintf("; native buckets p50 %s, p99 %s", seconds(quantile(0.5, native)), seconds(quantile(0.99, native)))
	}
	t.Log(line)
}

// seconds shows a duration in seconds, to the microsecond.
func seconds(s float64) string {
	if math.IsNaN(s) {
		return "none"
	}
	return time.Duration(s * float64(time.Second)).Round(time.Microsecond).String()
}

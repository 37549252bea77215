package load

import (
	"fmt"
	"math"
	"testing"

	"github.com/meshinit/meshinit/test/scrape"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/ptr"
)

// The injector's metrics the tests read: controller-runtime's histogram of the webhook's handling
// time, by path (label webhook), and the injector's own count of admissions by result.
const latencyMetric, injectionsMetric = "controller_runtime_webhook_latency_seconds", "sidecar_injection_total"

// injectionsSince are the admissions by result between two scrapes.
func injectionsSince(before, after scrape.Metrics) map[string]float64 {
	delta := after.CountsBy(injectionsMetric, "result")
	for result, n := range before.CountsBy(injectionsMetric, "result") {
		delta[result] -= n
	}
	return delta
}

// bucket is a histogram bucket: count observations in (lower, upper].
type bucket struct {
	lower, upper, count float64
	// exponential: histogram_quantile assumes a native bucket's observations spread evenly on a
	// logarithmic scale, a classic bucket's on a linear one.
	exponential bool
}

// at is the value a fraction of the way through the bucket.
func (b bucket) at(fraction float64) float64 {
	switch {
	case math.IsInf(b.upper, 1):
		// As histogram_quantile: nothing is known above the last finite bound.
		return b.lower
	case b.exponential:
		return math.Exp2(math.Log2(b.lower) + (math.Log2(b.upper)-math.Log2(b.lower))*fraction)
	default:
		return b.lower + (b.upper-b.lower)*fraction
	}
}

// quantile is the q-quantile of the observations in buckets (ascending), interpolated within its
// bucket as Prometheus' histogram_quantile does; NaN if there are none.
func quantile(q float64, buckets []bucket) float64 {
	var total float64
	for _, b := range buckets {
		total += b.count
	}
	rank, below := q*total, 0.0
	for _, b := range buckets {
		if b.count > 0 && below+b.count >= rank {
			return b.at((rank - below) / b.count)
		}
		below += b.count
	}
	return math.NaN()
}

// classicBuckets are the observations of the histogram's classic buckets between two scrapes.
func classicBuckets(before, after *dto.Histogram) []bucket {
	cumulative := func(h *dto.Histogram) map[float64]float64 {
		m := map[float64]float64{}
		for _, b := range h.GetBucket() {
			m[b.GetUpperBound()] = float64(b.GetCumulativeCount())
		}
		return m
	}
	was := cumulative(before)
	var out []bucket
	lower, below := 0.0, 0.0
	for _, b := range after.GetBucket() {
		upTo := float64(b.GetCumulativeCount()) - was[b.GetUpperBound()]
		out = append(out, bucket{lower: lower, upper: b.GetUpperBound(), count: upTo - below})
		lower, below = b.GetUpperBound(), upTo
	}
	total := float64(after.GetSampleCount() - before.GetSampleCount())
	return append(out, bucket{lower: lower, upper: math.Inf(1), count: total - below})
}

// nativeBuckets are the observations of the histogram's native (exponential) buckets between two
// scrapes, which must share their schema.
func nativeBuckets(before, after *dto.Histogram) ([]bucket, error) {
	if after.Schema == nil {
		return nil, fmt.Errorf("the histogram has no native buckets")
	}
	if before.Schema != nil && (before.GetSchema() != after.GetSchema() || before.GetZeroThreshold() != after.GetZeroThreshold()) {
		return nil, fmt.Errorf("the native histogram's resolution changed between the scrapes (schema %d to %d)", before.GetSchema(), after.GetSchema())
	}
	was, now := nativeCounts(before), nativeCounts(after)
	out := []bucket{{lower: 0, upper: after.GetZeroThreshold(), count: float64(after.GetZeroCount()) - float64(before.GetZeroCount())}}
	first, last := math.MaxInt, math.MinInt
	for i := range now {
		first, last = min(first, i), max(last, i)
	}
	// Bucket i of schema s holds (2^((i-1)/2^s), 2^(i/2^s)].
	width := math.Exp2(-float64(after.GetSchema()))
	for i := first; i <= last; i++ {
		out = append(out, bucket{lower: math.Exp2(float64(i-1) * width), upper: math.Exp2(float64(i) * width),
			count: now[i] - was[i], exponential: true})
	}
	return out, nil
}

// nativeCounts are the counts of a native histogram's positive buckets, by index, decoded from
// their spans and delta-encoded counts.
func nativeCounts(h *dto.Histogram) map[int]float64 {
	counts := map[int]float64{}
	index, next := 0, 0
	var count int64
	for _, span := range h.GetPositiveSpan() {
		index += int(span.GetOffset())
		for range span.GetLength() {
			count += h.GetPositiveDelta()[next]
			next++
			counts[index] = float64(count)
			index++
		}
	}
	return counts
}

// TestHistogramQuantile checks the quantiles the figures are computed with, against values worked
// out by hand as histogram_quantile would.
func TestHistogramQuantile(t *testing.T) {
	classic := func(count uint64, cumulative ...uint64) *dto.Histogram {
		h := &dto.Histogram{SampleCount: &count}
		for i, c := range cumulative {
			h.Bucket = append(h.Bucket, &dto.Bucket{UpperBound: ptr.To(math.Pow10(i - 3)), CumulativeCount: ptr.To(c)})
		}
		return h
	}
	// Since before: 10 up to 1ms, 80 in (1ms, 10ms], 10 in (10ms, 100ms], 10 above.
	before, after := classic(5, 1, 3, 5), classic(115, 11, 93, 105)
	for _, tc := range []struct {
		q, want float64
	}{
		{0.5, 0.001 + 0.009*(55.0-10)/80},
		{0.9, 0.01 + 0.09*(99.0-90)/10},
		{0.99, 0.1},
	} {
		if got := quantile(tc.q, classicBuckets(before, after)); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("classic q%v = %v, want %v", tc.q, got, tc.want)
		}
	}

	// Schema 0: bucket i holds (2^(i-1), 2^i]. Buckets -10 and -9 hold 4 and 6, after 1 and 1.
	native := func(deltas ...int64) *dto.Histogram {
		return &dto.Histogram{Schema: ptr.To(int32(0)), ZeroThreshold: ptr.To(1e-128), ZeroCount: ptr.To(uint64(0)),
			PositiveSpan: []*dto.BucketSpan{{Offset: ptr.To(int32(-10)), Length: ptr.To(uint32(2))}}, PositiveDelta: deltas}
	}
	buckets, err := nativeBuckets(native(1, 0), native(5, 2))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := quantile(0.5, buckets), math.Exp2(-10+1.0/6); math.Abs(got-want) > 1e-12 {
		t.Errorf("native p50 = %v, want %v", got, want)
	}
	if _, err := nativeBuckets(&dto.Histogram{Schema: ptr.To(int32(3))}, native(1)); err == nil {
		t.Error("buckets of different schemas were subtracted")
	}
}

// Package scrape reads a process's Prometheus /metrics, as the tests of the injector look at what
// it counted.
package scrape

import (
	"errors"
	"io"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Metrics are the metric families at one scrape, by name.
type Metrics map[string]*dto.MetricFamily

// Get reads url in Prometheus' protobuf format: the only one that carries a histogram's native
// buckets beside its classic ones.
func Get(t testing.TB, url string) Metrics {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	dec := expfmt.NewDecoder(resp.Body, expfmt.ResponseFormat(resp.Header))
	m := Metrics{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); errors.Is(err, io.EOF) {
			return m
		} else if err != nil {
			t.Fatalf("decoding %s: %v", url, err)
		}
		m[mf.GetName()] = mf
	}
}

// Histogram is the histogram name with the label name=value; an empty one if there is none yet.
func (m Metrics) Histogram(name, label, value string) *dto.Histogram {
	for _, metric := range m[name].GetMetric() {
		for _, l := range metric.GetLabel() {
			if l.GetName() == label && l.GetValue() == value {
				return metric.GetHistogram()
			}
		}
	}
	return &dto.Histogram{}
}

// CountsBy sums the counter name by the values of its label; a value never counted is absent.
func (m Metrics) CountsBy(name, label string) map[string]float64 {
	sums := map[string]float64{}
	for _, metric := range m[name].GetMetric() {
		for _, l := range metric.GetLabel() {
			if l.GetName() == label {
				sums[l.GetValue()] += metric.GetCounter().GetValue()
			}
		}
	}
	return sums
}

// Gauge is the value of the gauge name, which has no labels: a gauge that is not there fails the
// test, rather than read as 0.
func (m Metrics) Gauge(t testing.TB, name string) float64 {
	t.Helper()
	if len(m[name].GetMetric()) != 1 {
		t.Fatalf("no gauge %s among the metrics scraped", name)
	}
	return m[name].GetMetric()[0].GetGauge().GetValue()
}

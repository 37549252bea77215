package charts_test

import (
	"context"
	"testing"

	"github.com/meshinit/meshinit/charts"
)

// BenchmarkRender measures `meshinit install control-plane`'s work: rendering with a generated
// certificate (the default), with an existing one, and the part of it that is meshinit's own
// value check; docs/benchmarks.md compares them.
func BenchmarkRender(b *testing.B) {
	secret := map[string]any{"tls": map[string]any{"mode": "secret", "secretName": "tls", "caBundle": "QUJD"}}
	for _, bc := range []struct {
		name   string
		values map[string]any
	}{
		{"generated-certificate", nil},
		{"existing-secret", secret},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := charts.Render(context.Background(), charts.Release{Name: "meshinit", Namespace: "kuma-system",
					Values: bc.values, KubeVersion: kubeVersion}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("value-check-only", func(b *testing.B) {
		ch, err := charts.Load()
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := charts.ValidateValues(ch, secret); err != nil {
				b.Fatal(err)
			}
		}
	})
}

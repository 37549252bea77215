package charts

import (
	"context"
	"testing"

	"github.com/meshinit/meshinit/test/kubeenv"
)

// BenchmarkRender measures `meshinit install control-plane`'s rendering against Helm's part of
// it alone (the reference), with an existing certificate and with a generated one;
// docs/benchmarks.md records the ratios.
func BenchmarkRender(b *testing.B) {
	existing := map[string]any{"tls": map[string]any{"mode": "secret", "secretName": "tls", "caBundle": "QUJD"}}
	release := func(values map[string]any) Release {
		return Release{Name: "meshinit", Namespace: "kuma-system", Values: values, KubeVersion: kubeenv.KubeVersion}
	}
	b.Run("helm-only", func(b *testing.B) {
		ch, err := Load()
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := helmRender(context.Background(), ch, release(existing)); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, bc := range []struct {
		name   string
		values map[string]any
	}{
		{"meshinit-existing-secret", existing},
		{"meshinit-generated-certificate", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Render(context.Background(), release(bc.values)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

package charts_test

import (
	"context"
	"errors"
	"testing"

	"helm.sh/helm/v4/pkg/strvals"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// FuzzValidateValues gives the chart any two --set strings, parsed as Helm parses them:
// ValidateValues never panics and reports each problem as a key's field error; values it accepts
// render, or fail with the chart's own message, never a panic.
func FuzzValidateValues(f *testing.F) {
	ch, err := charts.Load()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, set1, set2 string) {
		values := map[string]any{}
		for _, s := range []string{set1, set2} {
			if strvals.ParseInto(s, values) != nil {
				return // Helm refuses it before the chart sees it
			}
		}
		if err := charts.ValidateValues(ch, values); err != nil {
			var errs api.FieldErrors
			if !errors.As(err, &errs) {
				t.Fatalf("--set %q --set %q: error %#v is not a list of field errors", set1, set2, err)
			}
			for _, e := range errs {
				if e.Field == "" || e.Problem == "" {
					t.Fatalf("--set %q --set %q: error %#v names no key or no problem", set1, set2, e)
				}
			}
			return
		}
		_, _ = charts.Render(context.Background(), charts.Release{Name: "meshinit", Namespace: "kuma-system", Values: values, KubeVersion: kubeenv.KubeVersion})
	})
}

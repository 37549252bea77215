package api

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// The hand-written checks must agree with Kubernetes' own, on the inputs that matter and on any
// the fuzzer finds.
func FuzzNamesAgreeWithKubernetes(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := isEnvVarName(s), len(validation.IsEnvVarName(s)) == 0; got != want {
			t.Errorf("isEnvVarName(%q) = %v, Kubernetes says %v", s, got, want)
		}
		if got, want := isDNS1123Label(s), len(validation.IsDNS1123Label(s)) == 0; got != want {
			t.Errorf("isDNS1123Label(%q) = %v, Kubernetes says %v", s, got, want)
		}
		if got, want := isDNS1123Subdomain(s), len(validation.IsDNS1123Subdomain(s)) == 0; got != want {
			t.Errorf("isDNS1123Subdomain(%q) = %v, Kubernetes says %v", s, got, want)
		}
	})
}

func TestIsUserName(t *testing.T) {
	for s, want := range map[string]bool{"kuma-dp": true, "_svc": true, "a1": true, "": false, "1a": false,
		"-a": false, "Kuma": false, "kuma dp": false, "abcdefghijklmnopqrstuvwxyz0123456": false} {
		if got := isUserName(s); got != want {
			t.Errorf("isUserName(%q) = %v, want %v", s, got, want)
		}
	}
}

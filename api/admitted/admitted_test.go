package admitted

import (
	"errors"
	"testing"
)

func TestCheck(t *testing.T) {
	doc := []byte(`{"kumaDPUser":"5678"}`)
	digest := Digest(doc)
	if err := Check(doc, digest); err != nil {
		t.Errorf("the admitted document: %v", err)
	}
	if err := Check([]byte(`{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false}}}`), ""); err != nil {
		t.Errorf("no digest (a pod injected before digests, or by Kuma): %v", err)
	}
	forged := []byte(`{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false}}}`)
	err := Check(forged, digest)
	var mismatch *MismatchError
	if !errors.As(err, &mismatch) || mismatch.Want != digest || mismatch.Got != Digest(forged) {
		t.Fatalf("a forged document: %v", err)
	}
	want := "the transparent-proxy configuration is not the one the injector admitted (SHA-256 " + Digest(forged)[:12] + "…, not " +
		digest[:12] + "… as MESHINIT_ADMITTED_CONFIG_SHA256 says): the pod's annotation traffic.kuma.io/transparent-proxy-config " +
		"was changed after admission; recreate the pod"
	if err.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", err, want)
	}
	if err := Check(doc, "XYZ"); err == nil || err.Error() != `MESHINIT_ADMITTED_CONFIG_SHA256 "XYZ" is not a SHA-256 in hex, which the injector writes: the pod's environment was not written by the injector` {
		t.Errorf("a malformed digest: %v", err)
	}
}

func TestFromEnviron(t *testing.T) {
	if got := FromEnviron([]string{"A=1", Env + "=abc", "B=2"}); got != "abc" {
		t.Errorf("FromEnviron = %q", got)
	}
	if got := FromEnviron([]string{"A=1"}); got != "" {
		t.Errorf("FromEnviron without it = %q", got)
	}
}

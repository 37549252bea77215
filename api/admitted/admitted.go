// Package admitted is how the readers of a pod's transparent-proxy configuration know it is the
// one the injector admitted. The configuration lives in the pod's annotation
// traffic.kuma.io/transparent-proxy-config, which anyone allowed to patch the pod can rewrite
// after admission (the chart's ValidatingAdmissionPolicy refuses that, where the API server has
// it). A container's environment, by contrast, cannot change once the pod exists, so the injector
// writes the document's SHA-256 into the environment of the containers it injects (Env), and
// kuma-init, the validation container and kuma-cni compare the document they read with it.
// Kuma's readers (kuma-dp, kumactl, Kuma's kuma-cni) ignore the variable.
package admitted

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Env is the variable of the injected containers that holds the hex SHA-256 of the document the
// injector wrote into the annotation.
const Env = "MESHINIT_ADMITTED_CONFIG_SHA256"

// Digest is the hex SHA-256 of a document, as Env holds it.
func Digest(doc []byte) string {
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

// Check compares a document read with the digest the injector wrote for it. It accepts any
// document when digest is empty: pods injected before the injector wrote digests, and pods Kuma's
// injector injected, have none (their callers say so in their logs).
func Check(doc []byte, digest string) error {
	if digest == "" {
		return nil
	}
	if len(digest) != sha256.Size*2 || strings.Trim(digest, "0123456789abcdef") != "" {
		return fmt.Errorf("%s %q is not a SHA-256 in hex, which the injector writes: the pod's environment was not written by the injector", Env, digest)
	}
	if got := Digest(doc); got != digest {
		return &MismatchError{Got: got, Want: digest}
	}
	return nil
}

// MismatchError is a document that is not the one admitted.
type MismatchError struct{ Got, Want string }

func (e *MismatchError) Error() string {
	return fmt.Sprintf("the transparent-proxy configuration is not the one the injector admitted (SHA-256 %s…, not %s… as %s says): "+
		"the pod's annotation traffic.kuma.io/transparent-proxy-config was changed after admission; recreate the pod",
		e.Got[:12], e.Want[:12], Env)
}

// FromEnviron returns Env's value in an environment as os.Environ gives it, or "".
func FromEnviron(environ []string) string {
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, Env+"="); ok {
			return v
		}
	}
	return ""
}

package charts

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// With tls.mode=generate, every render outside `helm upgrade` (whose lookup finds the Secret)
// makes a new CA and certificate. Applied over an installed injector, the webhook's caBundle would
// change at once while kubelet updates the injector's Secret volume up to a minute or two later,
// and every admission in between fails. So the CLI reads the Secret the cluster holds and keeps
// its certificate, or, when that one cannot serve on, has the caBundle trust both CAs.

// minRemaining is how long a kept certificate must still be valid: a render keeps it for as long
// as the manifests are applied again, and one that is about to expire is better replaced now.
const minRemaining = 30 * 24 * time.Hour

// GeneratedSecret is the chart's generated TLS Secret among objs, nil when the values make none
// (tls.mode secret or certManager, or an injector outside the cluster).
func GeneratedSecret(objs []*unstructured.Unstructured) (*corev1.Secret, error) {
	for _, obj := range objs {
		if obj.GetKind() != "Secret" {
			continue
		}
		if t, _, _ := unstructured.NestedString(obj.Object, "type"); t != string(corev1.SecretTypeTLS) {
			continue
		}
		return Typed[corev1.Secret]([]*unstructured.Unstructured{obj}, "Secret", obj.GetName())
	}
	return nil, nil
}

// KeepCertificate rewrites manifest, whose generated TLS Secret is generated, for the cluster's
// Secret of that name, existing. When existing holds a certificate its CA signed for the names the
// generated one has, valid for at least minRemaining more, the manifest takes existing's CA,
// certificate and key instead of the generated ones, and kept is true. Otherwise the manifest keeps
// the generated ones, but its caBundle trusts existing's CA as well, so that the injector's old
// certificate is trusted until kubelet gives it the new one; why says why it was not kept.
func KeepCertificate(manifest string, generated, existing *corev1.Secret, now time.Time) (out string, kept bool, why string) {
	genCA := generated.Data["ca.crt"]
	err := servable(existing, generated, now)
	if err == nil {
		for _, key := range []string{"ca.crt", "tls.crt", "tls.key"} {
			manifest = strings.ReplaceAll(manifest, b64(generated.Data[key]), b64(existing.Data[key]))
		}
		return manifest, true, ""
	}
	why = err.Error()
	oldCA := existing.Data["ca.crt"]
	if !isPEMCertificates(oldCA) {
		return manifest, false, why
	}
	both := append(append(append([]byte{}, oldCA...), '\n'), genCA...)
	return strings.ReplaceAll(manifest, "caBundle: "+b64(genCA), "caBundle: "+b64(both)), false, why
}

// servable says why existing's certificate cannot serve in place of generated's, nil if it can.
func servable(existing, generated *corev1.Secret, now time.Time) error {
	for _, key := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if len(existing.Data[key]) == 0 {
			return fmt.Errorf("it has no %s", key)
		}
	}
	pair, err := tls.X509KeyPair(existing.Data["tls.crt"], existing.Data["tls.key"])
	if err != nil {
		return fmt.Errorf("its tls.crt and tls.key are not a key pair: %w", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return fmt.Errorf("its tls.crt: %w", err)
	}
	if remaining := cert.NotAfter.Sub(now); remaining < minRemaining {
		return fmt.Errorf("its certificate expires on %s", cert.NotAfter.UTC().Format(time.DateOnly))
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(existing.Data["ca.crt"]) {
		return errors.New("its ca.crt holds no PEM certificate")
	}
	want, err := tls.X509KeyPair(generated.Data["tls.crt"], generated.Data["tls.key"])
	if err != nil {
		return err
	}
	wantCert, err := x509.ParseCertificate(want.Certificate[0])
	if err != nil {
		return err
	}
	for _, name := range wantCert.DNSNames {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: now}); err != nil {
			return fmt.Errorf("its certificate does not serve %s: %w", name, err)
		}
	}
	return nil
}

func isPEMCertificates(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil && block.Type == "CERTIFICATE"
}

func b64(data []byte) string { return base64.StdEncoding.EncodeToString(data) }

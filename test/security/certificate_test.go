package security

import (
	"bytes"
	"encoding/pem"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// TestReapplyKeepsCertificate: `meshinit install control-plane` with tls.mode=generate, run
// again against a real API server holding the injector's Secret, prints that Secret's CA,
// certificate and key, and a caBundle of that CA, so that `kubectl apply` changes nothing the
// injector serves: before, each run made a new CA, the caBundle changed at once and the Secret
// volume a minute later, and admissions failed in between. A Secret whose certificate cannot serve
// on (made for other names here) is replaced, with a caBundle trusting the old CA and the new one,
// and a warning; a cluster that cannot be read gets new ones and a warning.
func TestReapplyKeepsCertificate(t *testing.T) {
	ctx := t.Context()
	env := kubeenv.Start(t)
	kubeconfig := env.WriteKubeconfig(t)
	if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kuma-system"}}); err != nil {
		t.Fatal(err)
	}
	binary := binaries.Build(t, "meshinit")
	render := func(args ...string) (secret *corev1.Secret, caBundle []byte, stderr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		cmd := exec.CommandContext(ctx, binary, append([]string{"install", "control-plane", "--kube-version", kubeenv.KubeVersion}, args...)...)
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errOut.String())
		}
		objs, err := charts.Objects(out.String())
		if err != nil {
			t.Fatal(err)
		}
		if secret, err = charts.GeneratedSecret(objs); err != nil || secret == nil {
			t.Fatalf("no generated Secret: %v", err)
		}
		webhooks, err := charts.Typed[admissionregistrationv1.MutatingWebhookConfiguration](objs, "MutatingWebhookConfiguration", "")
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range webhooks.Webhooks {
			if caBundle != nil && !bytes.Equal(w.ClientConfig.CABundle, caBundle) {
				t.Fatalf("the webhooks' caBundles differ")
			}
			caBundle = w.ClientConfig.CABundle
		}
		return secret, caBundle, strings.TrimSuffix(errOut.String(), "\n")
	}

	// A first install: nothing to keep, nothing to say.
	first, firstBundle, stderr := render("--kubeconfig", kubeconfig)
	if stderr != "" {
		t.Errorf("first install: stderr %q", stderr)
	}
	if !bytes.Equal(firstBundle, first.Data["ca.crt"]) {
		t.Errorf("first install: the caBundle is not the Secret's CA")
	}
	installed := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: first.Name, Namespace: first.Namespace}, Type: first.Type, Data: first.Data}
	if err := env.Client.Create(ctx, installed); err != nil {
		t.Fatal(err)
	}

	again, againBundle, stderr := render("--kubeconfig", kubeconfig)
	if stderr != "" {
		t.Errorf("applied again: stderr %q", stderr)
	}
	for _, key := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if !bytes.Equal(again.Data[key], first.Data[key]) {
			t.Errorf("applied again: %s is new", key)
		}
	}
	if !bytes.Equal(againBundle, first.Data["ca.crt"]) {
		t.Errorf("applied again: the caBundle is not the installed CA")
	}

	// The installed Secret holds a certificate for another release's names.
	other, _, _ := render("--certificate-from-cluster=false", "--release-name", "other")
	installed.Data = other.Data
	if err := env.Client.Update(ctx, installed); err != nil {
		t.Fatal(err)
	}
	rotated, rotatedBundle, stderr := render("--kubeconfig", kubeconfig)
	const want = "warning: the certificate of the injector's Secret kuma-system/meshinit-injector-tls cannot be kept: its certificate does not serve " +
		"meshinit-injector: x509: certificate is valid for other-meshinit-injector, other-meshinit-injector.kuma-system, other-meshinit-injector.kuma-system.svc, " +
		"other-meshinit-injector.kuma-system.svc.cluster.local, not meshinit-injector. These manifests hold a new one, and the webhook's caBundle " +
		"trusts the old CA and the new one, so that admissions go on while kubelet updates the injector's Secret volume; apply them again once the injector serves " +
		"the new certificate, to drop the old CA"
	if stderr != want {
		t.Errorf("a certificate for other names: stderr\n%s\nwant\n%s", stderr, want)
	}
	if bytes.Equal(rotated.Data["tls.crt"], other.Data["tls.crt"]) {
		t.Error("a certificate for other names was kept")
	}
	if got := pemBlocks(t, rotatedBundle); len(got) != 2 || !bytes.Equal(got[0], pemBlocks(t, other.Data["ca.crt"])[0]) ||
		!bytes.Equal(got[1], pemBlocks(t, rotated.Data["ca.crt"])[0]) {
		t.Errorf("the caBundle across the rotation holds %d certificates, want the old CA then the new one", len(got))
	}

	missing := filepath.Join(t.TempDir(), "no-kubeconfig")
	_, _, stderr = render("--kubeconfig", missing)
	wantOffline := "warning: the injector's Secret kuma-system/meshinit-injector-tls could not be read from the cluster (stat " + missing + ": no such file or directory): " +
		"these manifests hold a new CA and certificate; applied over an installed injector, admissions fail until kubelet updates its Secret volume. " +
		"Give --kubeconfig to keep the installed certificate, or --certificate-from-cluster=false to make a new one without this warning"
	if stderr != wantOffline {
		t.Errorf("no cluster: stderr\n%s\nwant\n%s", stderr, wantOffline)
	}
}

// pemBlocks are the DER bytes of the PEM blocks of data.
func pemBlocks(t *testing.T, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return out
		}
		out = append(out, block.Bytes)
	}
}

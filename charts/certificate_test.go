package charts

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/test/kubeenv"
)

// TestKeepCertificate: a Secret whose certificate serves the same names for long enough is kept
// whole; one about to expire, or broken, is replaced, its CA trusted beside the new one when it
// has one.
func TestKeepCertificate(t *testing.T) {
	render := func() (string, *corev1.Secret) {
		t.Helper()
		manifest, err := Render(t.Context(), Release{Name: "meshinit", Namespace: "kuma-system", KubeVersion: kubeenv.KubeVersion})
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Objects(manifest)
		if err != nil {
			t.Fatal(err)
		}
		secret, err := GeneratedSecret(objs)
		if err != nil || secret == nil {
			t.Fatalf("no generated Secret: %v", err)
		}
		return manifest, secret
	}
	installedManifest, installed := render()
	manifest, generated := render()
	now := time.Now()

	out, kept, why := KeepCertificate(manifest, generated, installed, now)
	if !kept || why != "" || out != installedManifest {
		t.Errorf("a servable certificate: kept %v (%s), the manifest is the installed one: %v", kept, why, out == installedManifest)
	}

	later := installed.DeepCopy()
	expiry := now.AddDate(10, 0, 0)
	out, kept, why = KeepCertificate(manifest, generated, later, expiry)
	if kept || !strings.HasPrefix(why, "its certificate expires on ") {
		t.Errorf("an expiring certificate: kept %v, why %q", kept, why)
	}
	if !strings.Contains(out, "caBundle: "+b64(append(append(append([]byte{}, installed.Data["ca.crt"]...), '\n'), generated.Data["ca.crt"]...))) {
		t.Error("an expiring certificate: the caBundle does not trust both CAs")
	}

	broken := installed.DeepCopy()
	delete(broken.Data, "tls.key")
	broken.Data["ca.crt"] = []byte("not a certificate")
	out, kept, why = KeepCertificate(manifest, generated, broken, now)
	if kept || why != "it has no tls.key" || out != manifest {
		t.Errorf("a broken Secret: kept %v, why %q, the manifest unchanged: %v", kept, why, out == manifest)
	}
}

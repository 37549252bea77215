package security

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/certkit"
	testcluster "github.com/meshinit/meshinit/test/cluster"
	"github.com/meshinit/meshinit/test/hostile"
	"github.com/meshinit/meshinit/test/netkit"
)

// TestWebhookCipherSuites: over TLS 1.2 the webhook completes a handshake only with ECDHE and an
// AEAD cipher; every CBC, RC4, 3DES and static-RSA suite Go knows is refused. TLS 1.3's suites are
// all AEAD.
func TestWebhookCipherSuites(t *testing.T) {
	ctx := t.Context()
	c := testcluster.New(ctx, t)
	inj := c.RunInjector(ctx, t, binaries.Build(t, "injector"), testcluster.InjectorOptions{Args: []string{testcluster.NoDrain}})
	var accepted []string
	for _, suite := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if !slices.Contains(suite.SupportedVersions, tls.VersionTLS12) {
			continue
		}
		conn, err := tls.Dial("tcp", inj.Addr, &tls.Config{InsecureSkipVerify: true, //nolint:gosec // the suites, not the certificate, are tested
			MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite.ID}})
		if err == nil {
			accepted = append(accepted, suite.Name)
			conn.Close()
		}
	}
	want := []string{
		"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
		"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	}
	slices.Sort(accepted)
	slices.Sort(want)
	// The certificate's key is of one kind: only its half of the list can complete a handshake.
	var offered []string
	for _, name := range want {
		if slices.Contains(accepted, name) {
			offered = append(offered, name)
		}
	}
	if len(accepted) == 0 || !slices.Equal(accepted, offered) {
		t.Errorf("TLS 1.2 suites accepted: %v; want only some of %v", accepted, want)
	}
	conn, err := tls.Dial("tcp", inj.Addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}) //nolint:gosec // as above
	if err != nil {
		t.Errorf("TLS 1.3: %v", err)
	} else {
		conn.Close()
	}
}

// TestClientCertificates: with --client-ca-file (the chart's webhook.clientCA), the injector
// answers only callers whose certificate that CA signed. The API server, given such a certificate
// for the webhook by its AdmissionConfiguration, as the README says, admits pods injected; a pod's
// flood of connections without one, or with one another CA signed, ends at the handshake,
// before it can hold anything.
func TestClientCertificates(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	clientCA := certkit.NewCA(t, "webhook-client-ca")
	apiServer := clientCA.Issue(t, clientCert("kube-apiserver"))
	rogue := certkit.NewCA(t, "another-ca").Issue(t, clientCert("kube-apiserver"))
	caFile := filepath.Join(dir, "client-ca.crt")
	write(t, caFile, string(clientCA.PEM))

	port := netkit.FreePort(t)
	kubeconfig := filepath.Join(dir, "webhook-kubeconfig")
	write(t, kubeconfig, fmt.Sprintf(`apiVersion: v1
kind: Config
users:
  - name: "127.0.0.1:%d"
    user:
      client-certificate-data: %s
      client-key-data: %s
`, port, b64(apiServer.CertPEM), b64(apiServer.KeyPEM)))
	admission := filepath.Join(dir, "admission.yaml")
	write(t, admission, `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: MutatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: `+kubeconfig+"\n")
	c := testcluster.New(ctx, t, func(env *envtest.Environment) {
		env.ControlPlane.GetAPIServer().Configure().Set("admission-control-config-file", admission)
	})
	inj := c.RunInjector(ctx, t, binaries.Build(t, "injector"), testcluster.InjectorOptions{Port: port, Metrics: true,
		Args: []string{testcluster.NoDrain, "--client-ca-file=" + caFile}})
	c.Register(ctx, t, inj.URL, nil)
	ns := meshedNamespace(ctx, t, c.Client, "client-certificates")
	if out := createPods(ctx, c.Client, ns, 3); out.injected != 3 {
		t.Errorf("through the API server: %s", out)
	}

	for _, tc := range []struct {
		name      string
		cert, key []byte
		ok        bool
	}{
		{"no certificate", nil, nil, false},
		{"a certificate of another CA", rogue.CertPEM, rogue.KeyPEM, false},
		{"the API server's certificate", apiServer.CertPEM, apiServer.KeyPEM, true},
	} {
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // the client's certificate is tested
		if tc.cert != nil {
			pair, err := tls.X509KeyPair(tc.cert, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{pair}
		}
		// TLS 1.3 clients learn of a refused certificate at their first read.
		conn, err := tls.Dial("tcp", inj.Addr, cfg)
		if err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
			_, err = conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
			if err == nil {
				_, err = conn.Read(make([]byte, 1))
			}
			conn.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}

	// Over TLS 1.3 a client's handshake completes before the server has checked its certificate:
	// what shows the flood held nothing is that none of its requests was answered or read.
	flood := hostile.Flood{Addr: inj.Addr, From: "127.0.0.2", Conns: 16, Send: 256 << 10}.Start(t)
	held := bodyBytes(t, inj.MetricsURL)
	answers, _ := flood.Outcome()
	flood.Stop()
	if len(answers) > 0 || held != 0 {
		t.Errorf("a flood without a certificate: answers %v, %v bytes held", answers, held)
	}
}

// clientCert is what a client certificate for name says.
func clientCert(name string) x509.Certificate {
	return x509.Certificate{Subject: pkix.Name{CommonName: name}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

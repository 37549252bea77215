package load

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/certkit"
	testcluster "github.com/meshinit/meshinit/test/cluster"
	"github.com/meshinit/meshinit/test/poll"
)

const (
	// rotationConcurrency clients create pods all through the rotations.
	rotationConcurrency = 10
	// createsPerStep are created with each certificate and each caBundle before the next change.
	createsPerStep = 100
)

// TestCertificateRotation rotates the injector's serving certificate, in a volume laid out as
// kubelet lays out a Secret's, while pods are created without pause: twice renewed by the same CA
// (a new key and certificate, as cert-manager renews), then a CA rotation done right (the
// webhook's caBundle first gets the new CA beside the old one, then the certificate is switched
// to one the new CA signed, then the old CA leaves the bundle), then renewed once more. No create
// may fail and every pod must be injected; a CA rotation without its first step fails creates
// with "x509: certificate signed by unknown authority", as it should. It reports how long after
// each change of the files the injector served the new certificate.
func TestCertificateRotation(t *testing.T) {
	ctx := t.Context()
	c := testcluster.New(ctx, t)
	ca := certkit.NewCA(t, "meshinit-test-ca-1")
	cert := issueServing(t, ca)
	vol := newSecretVolume(t, cert.files)
	inj := c.RunInjector(ctx, t, binaries.Build(t, "injector"), testcluster.InjectorOptions{CertDir: vol.dir, Args: []string{testcluster.NoDrain}})
	// Through the balancer, to see the API server open new connections.
	lb := newBalancer(t, inj)
	namespaces := meshedNamespaces(ctx, t, c.Client, "rotation", 2)

	var done atomic.Int64
	// progressed waits until createsPerStep more pods were created.
	progressed := func() {
		t.Helper()
		from := done.Load()
		poll.Until(t, "creates go on", func() (bool, error) { return done.Load() >= from+createsPerStep, nil })
	}
	// trust registers the bundle of the CAs and waits until the API server calls through a new
	// connection, then until pods were created through it. An established connection goes on with
	// the certificate it was opened with, whatever the files hold since; so that every change is
	// put to the API server, each bundle differs from the last in its bytes (one more trailing
	// newline), for which the API server makes a new webhook client, whose connections are all
	// new and verify the certificate served at that moment against the bundle.
	generation := 0
	register := func(cas ...*certkit.CA) {
		var bundle []byte
		for _, ca := range cas {
			bundle = append(bundle, ca.PEM...)
		}
		generation++
		bundle = append(bundle, bytes.Repeat([]byte("\n"), generation)...)
		c.Register(ctx, t, lb.URL(), map[string]any{"tls": map[string]any{"caBundle": base64.StdEncoding.EncodeToString(bundle)}})
	}
	trust := func(cas ...*certkit.CA) {
		t.Helper()
		from := lb.accepted.Load()
		register(cas...)
		poll.Until(t, "the API server's new webhook client connects", func() (bool, error) { return lb.accepted.Load() > from, nil })
		progressed()
	}
	// rotate puts a new certificate of ca in place, as kubelet updates the Secret's volume, and
	// notes how long it took to be served.
	var reloads []string
	rotate := func(what string, ca *certkit.CA) {
		t.Helper()
		cert := issueServing(t, ca)
		changed := vol.update(t, cert.files)
		// Within poll.Timeout even should the file event be missed: controller-runtime's
		// certwatcher also rereads the files every 10s.
		poll.Until(t, "the new certificate is served", func() (bool, error) {
			serial, err := servedSerial(inj.Addr)
			return err == nil && serial.Cmp(cert.serial) == 0, nil
		})
		reloads = append(reloads, fmt.Sprintf("%s %s", what, time.Since(changed).Round(time.Millisecond)))
	}

	stop, result := make(chan struct{}), make(chan *outcome, 1)
	load := workload{namespaces: namespaces, concurrency: rotationConcurrency, stop: stop, progress: func(n int) { done.Store(int64(n)) }}
	stopLoad := sync.OnceValue(func() *outcome {
		close(stop)
		return <-result
	})
	register(ca)
	waitForInjection(ctx, t, c.Client, namespaces[0])
	go func() { result <- load.run(ctx, unthrottled(t, c.Config)) }()
	// A failed step ends the test; the creates end first.
	defer stopLoad()

	// Each change of the certificate is followed by new connections of the API server, with the
	// same CAs trusted: they verify the new certificate.
	progressed()
	rotate("renewal 1, same CA:", ca)
	trust(ca)
	rotate("renewal 2, same CA:", ca)
	trust(ca)
	// The CA rotation done right: both CAs trusted, then the new CA's certificate served, then the
	// new CA alone trusted.
	next := certkit.NewCA(t, "meshinit-test-ca-2")
	trust(ca, next)
	rotate("CA rotation, to a certificate of the new CA with both CAs trusted:", next)
	trust(ca, next)
	trust(next)
	rotate("renewal 3, new CA:", next)
	trust(next)
	out := stopLoad()

	t.Logf("figures: certificate rotation, %d clients: %s", rotationConcurrency, out)
	t.Logf("figures: certificate rotation: the new certificate served, after the files changed: %s", strings.Join(reloads, "; "))
	if out.failed() > 0 {
		t.Errorf("%d of %d creates failed while the certificate rotated", out.failed(), len(out.latencies))
	}
	s := stored(ctx, t, c.Client, namespaces, out.created)
	if len(s.uninjected) > 0 || len(s.missing) > 0 {
		t.Errorf("of %d pods created, %d were stored without injection (%v) and %d were not found (%v)",
			len(out.created), len(s.uninjected), s.uninjected, len(s.missing), s.missing)
	}
}

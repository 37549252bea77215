package webhook

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni/multus"
	"github.com/meshinit/meshinit/cni/taint"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/background"
	"github.com/meshinit/meshinit/test/crds"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/logbuf"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/testconfig"
)

// TestNewManagerInCNIMode starts the injector in CNI mode, with the taint controller on too, so
// that both restrict the cache: where Multus's CRD is not installed it starts all the same and
// says why it creates no NetworkAttachmentDefinitions; where it is, it creates them.
func TestNewManagerInCNIMode(t *testing.T) {
	env := kubeenv.Start(t)
	// The cache's informers log through controller-runtime's global logger, which otherwise
	// complains, with a stack trace, that it was never set.
	log.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{}))
	cfg := testconfig.Default()
	cfg.Injector.CNIEnabled = true
	cfg.NodeTaintController.Enabled = true
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshed", Labels: map[string]string{api.LabelSidecarInjection: "enabled"}}}
	if err := env.Client.Create(t.Context(), ns); err != nil {
		t.Fatal(err)
	}

	t.Run("without Multus's CRD", func(t *testing.T) {
		logs := startInjector(t, env, *cfg).logs
		if want := "NetworkAttachmentDefinitions will not be created: Multus's CRD is not installed"; !strings.Contains(logs.String(), want) {
			t.Errorf("the injector's log\n%s\ndoes not say: %s", logs, want)
		}
	})

	crds.Install(t, env.Config, crds.NetworkAttachmentDefinition())

	t.Run("with Multus's CRD", func(t *testing.T) {
		startInjector(t, env, *cfg)
		nad := &metav1.PartialObjectMetadata{}
		nad.SetGroupVersionKind(schema.GroupVersionKind{Group: "k8s.cni.cncf.io", Version: "v1", Kind: "NetworkAttachmentDefinition"})
		err := poll.Wait(t.Context(), func() (bool, error) {
			err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns.Name, Name: multus.NetworkName}, nad)
			return err == nil, client.IgnoreNotFound(err)
		})
		if err != nil {
			t.Fatalf("no %s NetworkAttachmentDefinition in the labelled namespace: %v", multus.NetworkName, err)
		}
	})
}

func TestCacheOptionsKeepsEveryRestriction(t *testing.T) {
	opts := cacheOptions(
		taint.CacheOptions(config.NodeTaintController{Enabled: true, CNIApp: "kuma-cni", CNINamespace: "kube-system"}),
		multus.CacheOptions(true))
	var kinds []string
	for obj := range opts.ByObject {
		kinds = append(kinds, fmt.Sprintf("%T", obj))
	}
	if len(kinds) != 2 {
		t.Errorf("the cache restricts %v, want pods and NetworkAttachmentDefinitions", kinds)
	}
	if opts := cacheOptions(taint.CacheOptions(config.NodeTaintController{}), multus.CacheOptions(false)); opts.ByObject != nil {
		t.Errorf("with both controllers off the cache restricts %v", opts.ByObject)
	}
}

// testInjector is an injector startInjector runs: its log, the webhook's address with a client
// that trusts its certificate, and its server, whose ledger and connections tests look at.
type testInjector struct {
	logs   *logbuf.Buffer
	url    string
	client *http.Client
	server *admissionServer
}

// startInjector runs NewManager's injector with cfg, serving on 127.0.0.1 with a fresh
// certificate, until the test ends; it returns once the injector serves. tweaks change its
// options.
func startInjector(t *testing.T, env *kubeenv.Env, cfg config.Config, tweaks ...func(*ServerOptions)) *testInjector {
	t.Helper()
	certs := envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}
	if err := certs.PrepWithoutInstalling(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = certs.Cleanup() })
	cfg.AdmissionServer.Port = uint16(certs.LocalServingPort)
	cfg.AdmissionServer.CertDir = certs.LocalServingCertDir
	logs := &logbuf.Buffer{}
	opts := ServerOptions{Config: &cfg, Host: certs.LocalServingHost, MetricsAddr: "0", HealthAddr: "0",
		Log: logs.Logger(), Controller: ctrlconfig.Controller{SkipNameValidation: ptr.To(true)}}
	for _, tweak := range tweaks {
		tweak(&opts)
	}
	mgr, err := NewManager(env.Config, opts)
	if err != nil {
		t.Fatal(err)
	}
	background.Run(t, "injector", mgr.Start)
	err = poll.Wait(t.Context(), func() (bool, error) {
		return mgr.GetWebhookServer().StartedChecker()(nil) == nil, nil
	})
	if err != nil || !mgr.GetCache().WaitForCacheSync(t.Context()) {
		t.Fatalf("the injector did not start serving: %v\n%s", err, logs)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certs.LocalServingCAData)
	return &testInjector{logs: logs, url: fmt.Sprintf("https://%s:%d%s", certs.LocalServingHost, certs.LocalServingPort, Path),
		client: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}},
		server: mgr.GetWebhookServer().(*admissionServer)}
}

package webhook

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/meshinit/meshinit/cni/multus"
	"github.com/meshinit/meshinit/cni/taint"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/webhook/inject"
)

// Path is where the injector serves pod admissions.
const Path = "/inject-sidecar"

// nativeSidecarsSince is the first Kubernetes release with sidecar containers on by default.
var nativeSidecarsSince = version.MustParseGeneric("1.29.0")

// ServerOptions says where the injector serves.
type ServerOptions struct {
	Config *config.Config
	// Host is the webhook's listen address; empty for all. The port is Config's.
	Host string
	// MetricsAddr and HealthAddr are the bind addresses of /metrics and of /healthz and /readyz;
	// "0" turns one off.
	MetricsAddr, HealthAddr string
	Log                     logr.Logger
	// Controller is the controllers' options. Tests that build more than one injector in a process
	// set SkipNameValidation: controller-runtime allows each controller's name once per process.
	Controller ctrlconfig.Controller
	// ShutdownDrain is how long the injector, asked to stop, keeps serving the webhook with
	// /readyz failing, before it stops.
	ShutdownDrain time.Duration
	// Limits bound what the webhook's clients may hold; zero fields take DefaultLimits'.
	Limits Limits
	// ClientCAFile, if set, holds the CA that must have signed a client's certificate: the API
	// server's, when its admission configuration gives it one.
	ClientCAFile string
}

// NewManager builds the injector: the webhook server (serve.go), with TLS from the cert dir
// reloaded when the files rotate and each request bounded by the guard (limits.go), /metrics, /healthz and /readyz (ready once the webhook serves and the namespace
// cache has synced, until it is asked to stop), the node taint controller when it is enabled, and
// in CNI mode, where Multus's CRD is installed, the controller of kuma-cni's
// NetworkAttachmentDefinitions. Kubernetes' version decides the sidecar's placement. Its Start
// drains for opts.ShutdownDrain once its context is done.
func NewManager(restConfig *rest.Config, opts ServerOptions) (manager.Manager, error) {
	native, err := supportsNativeSidecars(restConfig)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	cfg := opts.Config
	// Asked before the manager is made: its cache needs to know.
	nads, err := multus.Enabled(restConfig, cfg.Injector, opts.Log.WithName("multus"))
	if err != nil {
		return nil, fmt.Errorf("NetworkAttachmentDefinition controller: %w", err)
	}
	server, err := newAdmissionServer(opts.Host, int(cfg.AdmissionServer.Port), cfg.AdmissionServer.CertDir, opts.ClientCAFile,
		opts.Limits.withDefaults(), opts.Log.WithName("webhook"))
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                 scheme,
		Logger:                 opts.Log,
		Metrics:                metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress: opts.HealthAddr,
		Controller:             opts.Controller,
		// The taint controller watches only the CNI DaemonSet's pods, the NetworkAttachmentDefinition
		// controller only kuma-cni's definitions.
		// The cluster's transparent-proxy ConfigMap is the only ConfigMap it watches.
		Cache:         cacheOptions(taint.CacheOptions(cfg.NodeTaintController), multus.CacheOptions(nads), configMapCacheOptions(cfg)),
		WebhookServer: server,
	})
	if err != nil {
		return nil, err
	}
	// The informers are asked for now, so the cache syncs them at start rather than on the first pod.
	for _, obj := range []client.Object{&corev1.Namespace{}, &corev1.ConfigMap{}} {
		if _, err := mgr.GetCache().GetInformer(context.Background(), obj); err != nil {
			return nil, err
		}
	}
	draining := newDrainingManager(mgr, opts.ShutdownDrain, opts.Log)
	mgr.GetWebhookServer().Register(Path, draining.closingWhenDraining(server.Guarded(&crwebhook.Admission{Handler: &Handler{
		Injector: &inject.Injector{Config: cfg, NativeSidecars: native, Cluster: &apiCluster{
			cached: mgr.GetCache(), live: mgr.GetAPIReader(),
			clusterConfigMap: client.ObjectKey{Namespace: cfg.SystemNamespace, Name: cfg.Injector.TransparentProxyConfigMap},
		}},
		Namespaces: mgr.GetCache(),
		Decoder:    admission.NewDecoder(scheme),
		Log:        opts.Log.WithName("inject"),
	}})))
	if err := taint.Setup(mgr, cfg.NodeTaintController); err != nil {
		return nil, fmt.Errorf("node taint controller: %w", err)
	}
	if err := multus.Setup(mgr, nads); err != nil {
		return nil, fmt.Errorf("NetworkAttachmentDefinition controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("namespaces", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return fmt.Errorf("the cache of namespaces and of the transparent-proxy ConfigMap has not synced yet")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("stopping", draining.ready); err != nil {
		return nil, err
	}
	opts.Log.Info("sidecar placement", "nativeSidecars", native)
	return draining, nil
}

// cacheOptions combines the controllers' cache restrictions. Each restricts kinds of its own, in
// ByObject, and sets nothing else.
func cacheOptions(each ...cache.Options) cache.Options {
	var all cache.Options
	for _, opts := range each {
		for obj, by := range opts.ByObject {
			if all.ByObject == nil {
				all.ByObject = map[client.Object]cache.ByObject{}
			}
			all.ByObject[obj] = by
		}
	}
	return all
}

// supportsNativeSidecars asks the API server for its version.
func supportsNativeSidecars(restConfig *rest.Config) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return false, err
	}
	info, err := dc.ServerVersion()
	if err != nil {
		return false, fmt.Errorf("asking the API server for its version: %w", err)
	}
	v, err := version.ParseGeneric(info.GitVersion)
	if err != nil {
		return false, fmt.Errorf("the API server's version %q: %w", info.GitVersion, err)
	}
	return v.AtLeast(nativeSidecarsSince), nil
}

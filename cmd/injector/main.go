// Command injector is meshinit's in-cluster manager: the pod mutating webhook that injects the
// sidecar, with /metrics, /healthz and /readyz. Its settings are the KUMA_RUNTIME_* environment.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/webhook"
)

func main() {
	opts := webhook.ServerOptions{}
	flag.StringVar(&opts.Host, "webhook-host", "", "address the webhook listens on; empty for all")
	flag.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", "address of /metrics; 0 to turn it off")
	flag.StringVar(&opts.HealthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	flag.DurationVar(&opts.ShutdownDrain, "shutdown-drain", 5*time.Second,
		"on SIGTERM, how long to keep serving the webhook with /readyz failing before stopping, so that the Service's endpoints and the API server's connections move to other replicas first")
	limits := webhook.DefaultLimits()
	flag.DurationVar(&limits.BodyTimeout, "admission-body-timeout", limits.BodyTimeout,
		"how long an admission request's body may take to arrive after its headers; the API server sends both at once")
	flag.IntVar(&limits.MaxConnsPerClient, "max-connections-per-client", limits.MaxConnsPerClient,
		"connections to the webhook open at once from one address (the API server needs one or a few, over HTTP/2); more are closed at once")
	flag.IntVar(&limits.MaxConns, "max-connections", limits.MaxConns, "connections to the webhook open at once from all addresses")
	flag.StringVar(&opts.ClientCAFile, "client-ca-file", "",
		"the PEM certificate of a CA: the webhook then requires client certificates it signed, such as the one the API server's admission configuration gives it")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if limits.BodyTimeout <= 0 || limits.MaxConnsPerClient <= 0 || limits.MaxConns <= 0 {
		fmt.Fprintf(os.Stderr, "injector: --admission-body-timeout, --max-connections-per-client and --max-connections must be positive; nothing was started\n")
		os.Exit(2)
	}
	opts.Limits = limits
	log := zap.New(zap.UseFlagOptions(&zapOpts))
	ctrl.SetLogger(log)

	cfg, warnings, err := config.Load(os.Environ())
	for _, w := range warnings {
		log.Info("warning: " + w)
	}
	if err == nil {
		err = cfg.ReadCACert()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "injector: the settings are not valid; nothing was started:\n%v\n", err)
		os.Exit(2)
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "injector: no Kubernetes API to talk to: %v\n", err)
		os.Exit(2)
	}
	opts.Config, opts.Log = cfg, log
	mgr, err := webhook.NewManager(restConfig, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "injector: %v\n", err)
		os.Exit(1)
	}
	log.Info("starting", "version", api.Version, "port", cfg.AdmissionServer.Port, "certDir", cfg.AdmissionServer.CertDir, "shutdownDrain", opts.ShutdownDrain)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		fmt.Fprintf(os.Stderr, "injector: %v\n", err)
		os.Exit(1)
	}
}

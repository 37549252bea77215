// Package injectorenv runs the injector against a real control plane: etcd and kube-apiserver
// from bin/ (through kubeenv), the injector's manager in this process serving on 127.0.0.1 with a
// fresh certificate, and the webhook registered from the chart's own rendered configuration.
package injectorenv

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"

	"github.com/go-logr/logr"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook"
)

// Options tune an Env.
type Options struct {
	// Config is the injector's configuration; nil for the defaults.
	Config *config.Config
	// Values override the chart's values for the webhook registration.
	Values map[string]any
	// Log receives the injector's logs; the zero value discards them.
	Log logr.Logger
	// Before runs on the manager before it starts, to register more webhooks, say.
	Before func(manager.Manager) error
}

// Env is a running control plane with the injector registered.
type Env struct {
	Env       *envtest.Environment
	Rest      *rest.Config
	Client    client.Client
	Config    *config.Config
	Manager   manager.Manager
	Webhook   envtest.WebhookInstallOptions
	Manifests string
	cancel    context.CancelFunc
	done      chan error
}

// Start starts everything and waits until the injector is ready. Call Stop when done.
func Start(ctx context.Context, opts Options) (_ *Env, err error) {
	env, err := kubeenv.Environment()
	if err != nil {
		return nil, err
	}
	restConfig, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting the control plane: %w", err)
	}
	e := &Env{Env: env, Rest: restConfig, Config: opts.Config}
	defer func() {
		if err != nil {
			e.Stop()
		}
	}()
	if e.Config == nil {
		e.Config = testconfig.Default()
	}
	if e.Client, err = client.New(restConfig, client.Options{}); err != nil {
		return nil, err
	}
	// A fresh CA and serving certificate for 127.0.0.1, on a free port.
	e.Webhook = envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}
	if err := e.Webhook.PrepWithoutInstalling(); err != nil {
		return nil, err
	}
	e.Config.AdmissionServer.Port = uint16(e.Webhook.LocalServingPort)
	e.Config.AdmissionServer.CertDir = e.Webhook.LocalServingCertDir

	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.Config.SystemNamespace}}); err != nil {
		return nil, err
	}
	if err := e.register(ctx, opts.Values); err != nil {
		return nil, err
	}
	if e.Manager, err = webhook.NewManager(restConfig, webhook.ServerOptions{
		Config: e.Config, Host: e.Webhook.LocalServingHost, MetricsAddr: "0", HealthAddr: "127.0.0.1:0", Log: opts.Log,
	}); err != nil {
		return nil, err
	}
	if opts.Before != nil {
		if err := opts.Before(e.Manager); err != nil {
			return nil, err
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.Manager.Start(runCtx) }()
	return e, e.waitReady(ctx)
}

// register applies the chart's webhook configuration, pointed at the local server.
func (e *Env) register(ctx context.Context, overrides map[string]any) error {
	values := loader.MergeMaps(map[string]any{
		"webhook": map[string]any{"url": fmt.Sprintf("https://%s:%d", e.Webhook.LocalServingHost, e.Webhook.LocalServingPort)},
		"tls":     map[string]any{"mode": "secret", "caBundle": base64.StdEncoding.EncodeToString(e.Webhook.LocalServingCAData)},
	}, overrides)
	manifest, err := charts.Render(ctx, charts.Release{Name: "meshinit", Namespace: e.Config.SystemNamespace,
		Values: values, KubeVersion: kubeenv.KubeVersion})
	if err != nil {
		return fmt.Errorf("rendering the chart: %w", err)
	}
	e.Manifests = manifest
	objs, err := charts.Objects(manifest)
	if err != nil {
		return err
	}
	for _, obj := range objs {
		if obj.GetKind() != "MutatingWebhookConfiguration" {
			continue
		}
		if err := e.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner("meshinit-test"), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return nil
}

// waitReady polls the webhook over TLS until it answers.
func (e *Env) waitReady(ctx context.Context) error {
	err := poll.Wait(ctx, func() (bool, error) {
		select {
		case err := <-e.done:
			return false, fmt.Errorf("the injector stopped: %w", err)
		default:
		}
		return e.Manager.GetWebhookServer().StartedChecker()(&http.Request{}) == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the injector is not ready: %w", err)
	}
	return nil
}

// Stop stops the injector, then the control plane.
func (e *Env) Stop() error {
	if e.cancel != nil {
		e.cancel()
		<-e.done
	}
	e.Webhook.Cleanup()
	return kubeenv.Stop(e.Env)
}

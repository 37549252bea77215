// Package chart tests the Helm chart against a real API server: every installation of
// test/chartcases applied with server-side apply, a real `helm install` and `helm upgrade` through
// the Helm SDK, and the rights the chart grants proven by running the injector and kuma-cni's
// lookup as the chart's service accounts.
package chart

import (
	"fmt"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshinit/meshinit/test/crds"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// shared is one control plane for the package, with the CRDs of cert-manager and Multus.
var shared = kubeenv.Shared[*kubeenv.Env]{What: "the control plane", Start: start,
	Stop: func(e *kubeenv.Env) error { return kubeenv.Stop(e.Environment) }}

func start() (*kubeenv.Env, error) {
	e, err := kubeenv.Environment()
	if err != nil {
		return nil, err
	}
	e.CRDs = append(crds.CertManager(), crds.NetworkAttachmentDefinition())
	cfg, err := e.Start()
	if err != nil {
		_ = kubeenv.Stop(e)
		return nil, fmt.Errorf("starting: %w", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		_ = kubeenv.Stop(e)
		return nil, err
	}
	return &kubeenv.Env{Environment: e, Config: cfg, Client: c}, nil
}

func TestMain(m *testing.M) { shared.Main(m) }

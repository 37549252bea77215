// Package injection tests the injector end to end: pods created through a real kube-apiserver and
// etcd, with the webhook registered by the chart's MutatingWebhookConfiguration.
package injection

import (
	"context"
	"errors"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshinit/meshinit/test/injectorenv"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// shared is the injector's test environment, for the package's tests.
var shared = kubeenv.Shared[*injectorenv.Env]{What: "the injector's test environment", Stop: (*injectorenv.Env).Stop,
	Start: func() (*injectorenv.Env, error) {
		return injectorenv.Start(context.Background(), injectorenv.Options{Before: func(mgr manager.Manager) error {
			return errors.Join(registerExtraWebhook(mgr), registerKumasInjector(mgr))
		}})
	}}

func TestMain(m *testing.M) { shared.Main(m) }

// Package injection tests the injector end to end: pods created through a real kube-apiserver and
// etcd, with the webhook registered by the chart's MutatingWebhookConfiguration.
package injection

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/meshinit/meshinit/test/injectorenv"
	"github.com/meshinit/meshinit/test/prereq"
)

// env is shared by the package's tests: a control plane takes seconds to start.
var (
	env     *injectorenv.Env
	envErr  error
	envOnce sync.Once
)

func shared(t *testing.T) *injectorenv.Env {
	t.Helper()
	envOnce.Do(func() {
		env, envErr = injectorenv.Start(context.Background(), injectorenv.Options{Before: registerExtraWebhook})
	})
	if envErr != nil {
		prereq.Missing(t, "the injector's test environment: %v", envErr)
	}
	return env
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	os.Exit(code)
}

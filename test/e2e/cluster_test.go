package e2e

import (
	"context"
	"testing"

	testcluster "github.com/meshinit/meshinit/test/cluster"
	"github.com/meshinit/meshinit/webhook/inject"
)

// cluster is a local control plane with the injector binary running against it, registered by
// the chart's own webhook configuration.
type cluster struct {
	*testcluster.Cluster
}

// startCluster starts the control plane and the injector binary, and registers the webhook; see
// testcluster.Start.
func startCluster(ctx context.Context, t *testing.T, injector string) *cluster {
	t.Helper()
	c, _ := testcluster.Start(ctx, t, injector, nil)
	return &cluster{Cluster: c}
}

// injection is the injector's log entry for an injected pod.
type injection struct {
	Reason   string           `json:"reason"`
	Settings []inject.Setting `json:"settings"`
	Warnings []string         `json:"warnings"`
}

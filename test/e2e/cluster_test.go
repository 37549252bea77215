package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"

	testcluster "github.com/meshinit/meshinit/test/cluster"
	"github.com/meshinit/meshinit/webhook/inject"
)

// cluster is a local control plane with the injector binary running against it, registered by
// the chart's own webhook configuration.
type cluster struct {
	*testcluster.Cluster
	injector *testcluster.Injector
}

// startCluster starts the control plane and the injector (the binary at injector, with the extra
// environment env) and registers the webhook; see testcluster.Start.
func startCluster(ctx context.Context, t *testing.T, injector string, env []string, step func(what string) (ready func())) *cluster {
	t.Helper()
	c, inj := testcluster.Start(ctx, t, injector, env, step)
	return &cluster{Cluster: c, injector: inj}
}

// injection is the injector's log entry for an injected pod.
type injection struct {
	Reason   string           `json:"reason"`
	Settings []inject.Setting `json:"settings"`
	Warnings []string         `json:"warnings"`
}

// injectionOf finds in the injector's log why and how it injected the pod namespace/name.
func (c *cluster) injectionOf(t *testing.T, namespace, name string) injection {
	t.Helper()
	data, err := os.ReadFile(c.injector.Log)
	if err != nil {
		t.Fatal(err)
	}
	scanner := bufio.NewScanner(bytes.NewReader(data))
	scanner.Buffer(nil, 1<<20)
	for scanner.Scan() {
		var entry struct {
			injection
			Msg       string `json:"msg"`
			Namespace string `json:"namespace"`
			Pod       string `json:"pod"`
		}
		if json.Unmarshal(scanner.Bytes(), &entry) == nil && entry.Msg == "injected" && entry.Namespace == namespace && entry.Pod == name {
			return entry.injection
		}
	}
	t.Fatalf("the injector's log has no injection of %s/%s:\n%s", namespace, name, data)
	return injection{}
}

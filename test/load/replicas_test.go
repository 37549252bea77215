package load

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/binaries"
	testcluster "github.com/meshinit/meshinit/test/cluster"
)

// drain, if given, replaces the stopped replica's default --shutdown-drain: -drain=0s shows what
// a replica that stops serving at once does to the creates.
var drain = flag.Duration("drain", -1, "the stopped replica's --shutdown-drain; negative for the injector's default")

const (
	// endpointsLag is how long after the pod's deletion starts the balancer takes it out:
	// kube-proxy learns of it from the EndpointSlice and applies changes at most once a second
	// (iptables' and nftables' default --min-sync-period), while kubelet sends SIGTERM at once.
	endpointsLag = time.Second
	// terminationGrace is Kubernetes' default terminationGracePeriodSeconds: SIGKILL follows
	// SIGTERM after it.
	terminationGrace = 30 * time.Second
)

// TestReplicaStoppedUnderLoad runs two injectors behind one balancer, the webhook registered at
// the balancer's address, creates pods at the load's concurrency, and midway stops a replica the way
// kubelet stops its pod: SIGTERM, the endpoint taken out when kube-proxy would, SIGKILL after the
// grace period. No create may fail and every pod must be injected, whatever the failure policy:
// with Fail a failure is a refused pod, with Ignore a pod admitted outside the mesh. The replica
// must exit by its drain, never killed: status 0, after its log said, in this order, that it
// drained, that the drain ended, and that every request in flight was answered.
func TestReplicaStoppedUnderLoad(t *testing.T) {
	ctx := t.Context()
	binary := binaries.Build(t, "injector")
	c := testcluster.New(ctx, t)
	for _, policy := range []string{"Fail", "Ignore"} {
		t.Run(policy, func(t *testing.T) {
			var args []string
			if *drain >= 0 {
				args = append(args, "--shutdown-drain="+drain.String())
			}
			stopped := c.RunInjector(ctx, t, binary, testcluster.InjectorOptions{Args: args})
			survivor := c.RunInjector(ctx, t, binary, testcluster.InjectorOptions{Args: []string{testcluster.NoDrain}})
			lb := newBalancer(t, stopped, survivor)
			c.Register(ctx, t, lb.URL(), map[string]any{"webhook": map[string]any{"failurePolicy": policy}})
			namespaces := meshedNamespaces(ctx, t, c.Client, "replicas-"+strings.ToLower(policy), loadNamespaces)
			waitForInjection(ctx, t, c.Client, namespaces[0])

			// The replica is stopped once half the load's pods are done, and the creates go on until
			// it is gone, however fast they are.
			var report string
			exited, enough := make(chan struct{}), make(chan struct{})
			var once sync.Once
			progress := func(done int) {
				if done == loadPods/2 {
					go func() { report = stopReplica(lb, stopped); close(exited) }()
				}
				select {
				case <-exited:
					if done >= loadPods {
						once.Do(func() { close(enough) })
					}
				default:
				}
			}
			out := workload{namespaces: namespaces, concurrency: loadConcurrency, stop: enough, progress: progress}.run(ctx, unthrottled(t, c.Config))
			s := stored(ctx, t, c.Client, namespaces, out.created)

			if err := drainedExit(stopped); err != nil {
				t.Errorf("the stopped replica did not exit by its drain: %v", err)
			}
			t.Logf("figures: replica stopped, failurePolicy %s: %s", policy, out)
			t.Logf("figures: replica stopped, failurePolicy %s: %s; connections to the stopped replica %d, to the other %d, reset for want of an endpoint %d; admitted uninjected %d",
				policy, report, lb.endpoint(stopped).conns.Load(), lb.endpoint(survivor).conns.Load(), lb.reset.Load(), len(s.uninjected))
			if out.failed() > 0 {
				t.Errorf("%d of %d creates failed while a replica stopped", out.failed(), len(out.latencies))
			}
			if len(s.uninjected) > 0 || len(s.missing) > 0 {
				t.Errorf("of %d pods admitted, %d were stored without injection (%v) and %d were not found (%v)",
					len(out.created), len(s.uninjected), s.uninjected, len(s.missing), s.missing)
			}
		})
	}
}

// drainSteps are the injector's log messages of a stop by drain, in their order.
var drainSteps = []string{
	"stopping: /readyz fails and the webhook serves on until the drain period ends",
	"the drain period ended; the webhook server stops taking requests and answers those in flight",
	"webhook server stopped; every request in flight was answered",
}

// drainedExit says how inj's exit, once stopped, differs from a stop by its drain.
func drainedExit(inj *testcluster.Injector) error {
	if err := inj.Exited(); err != nil {
		return fmt.Errorf("it exited with %v", err)
	}
	data, err := os.ReadFile(inj.Log)
	if err != nil {
		return err
	}
	next := 0
	for _, line := range strings.Split(string(data), "\n") {
		var entry struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && next < len(drainSteps) && entry.Msg == drainSteps[next] {
			next++
		}
	}
	if next < len(drainSteps) {
		return fmt.Errorf("its log never said %q after the steps before it", drainSteps[next])
	}
	return nil
}

// stopReplica stops the injector as kubelet stops its pod, while kube-proxy takes its endpoint
// out of the balancer endpointsLag later, and says how the stop went.
func stopReplica(lb *balancer, inj *testcluster.Injector) string {
	began := time.Now()
	go func() {
		time.Sleep(endpointsLag)
		lb.endpoint(inj).terminating.Store(true)
	}()
	killed := inj.Stop(terminationGrace)
	if killed {
		return fmt.Sprintf("the replica was still running %s after SIGTERM and was killed", terminationGrace)
	}
	return fmt.Sprintf("the replica exited %s after SIGTERM", time.Since(began).Round(time.Millisecond))
}

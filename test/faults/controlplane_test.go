package faults

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/prereq"
)

// controlPlane is a control plane whose API server can be stopped and started again while etcd
// runs on. envtest starts its API server again on the same port, but, in a cert dir of its own
// making, with a new serving CA, which every client made before the restart then rejects; given a
// cert dir, it keeps its certificates, and clients reconnect as they would to a restarted API
// server of a cluster.
type controlPlane struct {
	*kubeenv.Env
	api *envtest.APIServer
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	env, err := kubeenv.Environment()
	if err != nil {
		prereq.Missing(t, "%v", err)
	}
	api := &envtest.APIServer{CertDir: t.TempDir()}
	env.ControlPlane.APIServer = api
	cfg, err := env.Start()
	if err != nil {
		_ = kubeenv.Stop(env)
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := kubeenv.Stop(env); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &controlPlane{Env: &kubeenv.Env{Environment: env, Config: cfg, Client: c}, api: api}
}

// stopAPIServer kills kube-apiserver, as a crash or the end of kubelet's grace period does, and
// waits until it is gone. Not envtest's Stop, which sends SIGTERM: kube-apiserver then closes its
// port at once but serves the watches already open until its request timeout, a minute, so that
// the test would wait that long and its clients would keep their watches meanwhile.
func (c *controlPlane) stopAPIServer(t *testing.T) {
	t.Helper()
	pid := c.apiServerPID(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing kube-apiserver: %v", err)
	}
	// Only envtest's bookkeeping is left to do, once it has seen its child end: until then its Stop
	// tries to signal the process, which is gone.
	poll.Until(t, "envtest has seen kube-apiserver end", func() (bool, error) {
		err := c.api.Stop()
		if errors.Is(err, syscall.ESRCH) {
			return false, nil
		}
		return err == nil, err
	})
}

// apiServerPID finds this control plane's kube-apiserver among the processes by its cert dir,
// which no other one shares; envtest does not tell its process.
func (c *controlPlane) apiServerPID(t *testing.T) int {
	t.Helper()
	want := "--cert-dir=" + c.api.CertDir + "\x00"
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range procs {
		cmdline, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(cmdline), want) || !strings.HasSuffix(strings.SplitN(string(cmdline), "\x00", 2)[0], "kube-apiserver") {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	t.Fatalf("no kube-apiserver process with %s", strings.TrimSuffix(want, "\x00"))
	return 0
}

// restart is when a restarted kube-apiserver came back.
type restart struct {
	// listening is when its port took connections again; healthy when /healthz said ok.
	listening, healthy time.Time
}

// startAPIServer starts kube-apiserver again, on etcd's data, and returns when it came back. It
// fails the test if the API server came back anywhere but where its clients reach it.
func (c *controlPlane) startAPIServer(t *testing.T) restart {
	t.Helper()
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	listening := make(chan time.Time, 1)
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	go func() {
		defer close(listening)
		err := poll.Wait(ctx, func() (bool, error) {
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				return false, nil
			}
			return true, conn.Close()
		})
		if err == nil {
			listening <- time.Now()
		}
	}()
	if err := c.api.Start(); err != nil {
		t.Fatalf("starting kube-apiserver again: %v", err)
	}
	healthy := time.Now()
	at, ok := <-listening
	if !ok {
		t.Fatal("kube-apiserver says it is healthy, but its port took no connection")
	}
	r := restart{healthy: healthy, listening: at}
	if got := c.api.SecureServing.URL("https", "/").String(); got != c.Config.Host {
		t.Fatalf("kube-apiserver came back on %s, its clients reach %s", got, c.Config.Host)
	}
	return r
}

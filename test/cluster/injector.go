package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
)

// InjectorOptions say how to run one injector.
type InjectorOptions struct {
	// Env is added to the settings the cluster gives (kubeconfig, namespace, port, cert dir).
	Env []string
	// Port is the webhook's port; 0 for a free one.
	Port int
	// CertDir holds its tls.crt and tls.key; empty for the cluster's certificate.
	CertDir string
	// Metrics serves /metrics, on a free port.
	Metrics bool
	// Args are more flags, such as --shutdown-drain.
	Args []string
}

// Injector is a running injector process.
type Injector struct {
	// Addr is the webhook's host:port, and URL its https URL without the path.
	Addr, URL string
	// HealthURL serves /healthz and /readyz.
	HealthURL string
	// MetricsURL is its /metrics, if it serves one.
	MetricsURL string
	// Log is the file of its output, JSON lines.
	Log string

	cmd    *exec.Cmd
	exited chan struct{}
	// waitErr is how the process ended, once exited is closed.
	waitErr error
}

// RunInjector starts the injector binary and waits until it is ready. When the test ends it is
// stopped as kubelet stops it, if it still runs, and its log is shown if the test failed.
func (c *Cluster) RunInjector(ctx context.Context, t testing.TB, binary string, opts InjectorOptions) *Injector {
	t.Helper()
	port, certDir := opts.Port, opts.CertDir
	if port == 0 {
		port = netkit.FreePort(t)
	}
	if certDir == "" {
		certDir = c.Certs.LocalServingCertDir
	}
	inj := &Injector{
		Addr:      net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		HealthURL: fmt.Sprintf("http://127.0.0.1:%d", netkit.FreePort(t)),
		Log:       filepath.Join(t.TempDir(), "injector.log"),
		exited:    make(chan struct{}),
	}
	inj.URL = "https://" + inj.Addr
	metrics := "0"
	if opts.Metrics {
		metrics = fmt.Sprintf("127.0.0.1:%d", netkit.FreePort(t))
		inj.MetricsURL = "http://" + metrics + "/metrics"
	}
	logFile, err := os.Create(inj.Log)
	if err != nil {
		t.Fatal(err)
	}
	inj.cmd = exec.Command(binary, append([]string{"--webhook-host=127.0.0.1", "--metrics-bind-address=" + metrics,
		"--health-probe-bind-address=" + strings.TrimPrefix(inj.HealthURL, "http://")}, opts.Args...)...)
	// Only the settings given: KUMA_ variables of the caller's shell would change what is shown.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUMA_") && !strings.HasPrefix(kv, "KUBECONFIG=") {
			inj.cmd.Env = append(inj.cmd.Env, kv)
		}
	}
	inj.cmd.Env = append(inj.cmd.Env,
		"KUBECONFIG="+c.Kubeconfig,
		"KUMA_RUNTIME_KUBERNETES_SYSTEM_NAMESPACE="+SystemNamespace,
		"KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT="+strconv.Itoa(port),
		"KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR="+certDir)
	inj.cmd.Env = append(inj.cmd.Env, opts.Env...)
	inj.cmd.Stdout, inj.cmd.Stderr = logFile, logFile
	if err := inj.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { inj.waitErr = inj.cmd.Wait(); logFile.Close(); close(inj.exited) }()
	t.Cleanup(func() {
		inj.Stop(10 * time.Second)
		if t.Failed() {
			log, _ := os.ReadFile(inj.Log)
			t.Logf("the injector's log (%s):\n%s", inj.Addr, log)
		}
	})
	err = poll.Wait(ctx, func() (bool, error) {
		select {
		case <-inj.exited:
			log, _ := os.ReadFile(inj.Log)
			return false, fmt.Errorf("it stopped: %v\n%s", inj.waitErr, log)
		default:
		}
		return inj.Ready(), nil
	})
	if err != nil {
		t.Fatalf("the injector is not ready: %v", err)
	}
	return inj
}

// Ready reports whether the injector's /readyz answers OK.
func (i *Injector) Ready() bool {
	resp, err := http.Get(i.HealthURL + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Stop stops the injector as kubelet stops a pod: SIGTERM, then SIGKILL if it still runs after
// grace. It returns once the process is gone, saying whether it had to be killed.
func (i *Injector) Stop(grace time.Duration) (killed bool) {
	select {
	case <-i.exited:
		return false
	default:
	}
	_ = i.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-i.exited:
		return false
	case <-time.After(grace):
		_ = i.cmd.Process.Kill()
		<-i.exited
		return true
	}
}

// Exited returns how the process ended, nil for exit status 0, once Stop has returned.
func (i *Injector) Exited() error {
	<-i.exited
	return i.waitErr
}

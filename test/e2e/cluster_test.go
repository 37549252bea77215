package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
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

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/webhook"
)

const (
	// systemNamespace is the injector's, as the chart installs it by default.
	systemNamespace = "kuma-system"
	// kubeVersion is bin/kube-apiserver's.
	kubeVersion = "v1.37.0"
	// readyTimeout bounds the injector's start: generous, on two busy cores.
	readyTimeout = 30 * time.Second
)

// cluster is a local control plane (etcd and kube-apiserver from bin/) with the injector binary
// running against it, registered by the chart's own webhook configuration.
type cluster struct {
	*kubeenv.Env
	Kubeconfig string
	// WebhookURL is where the API server calls the injector.
	WebhookURL string
	// injectorLog is the injector's output, JSON lines.
	injectorLog string
}

// startCluster starts the control plane, then the injector (the binary at injector, with the
// extra environment env) serving a fresh certificate on 127.0.0.1, and registers the webhook from
// the chart's rendered configuration. Everything is stopped and removed when the test ends.
// step, if not nil, hears of each part as it starts, and the function it returns as it is ready.
func startCluster(ctx context.Context, t *testing.T, injector string, env []string, step func(what string) (ready func())) *cluster {
	t.Helper()
	if step == nil {
		step = func(string) func() { return func() {} }
	}
	ready := step("control plane: etcd and kube-apiserver " + kubeVersion + " from bin/")
	c := &cluster{Env: kubeenv.Start(t)}
	c.Kubeconfig = c.WriteKubeconfig(t)
	ready()

	certs := envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}
	if err := certs.PrepWithoutInstalling(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = certs.Cleanup() })
	if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}); err != nil {
		t.Fatal(err)
	}
	c.WebhookURL = fmt.Sprintf("https://127.0.0.1:%d", certs.LocalServingPort)
	ready = step(fmt.Sprintf("injector: %s serving %s%s", injector, c.WebhookURL, webhook.Path))
	c.injectorLog = filepath.Join(t.TempDir(), "injector.log")
	health := freePort(t)
	c.runInjector(ctx, t, injector, append([]string{
		"KUBECONFIG=" + c.Kubeconfig,
		"KUMA_RUNTIME_KUBERNETES_SYSTEM_NAMESPACE=" + systemNamespace,
		"KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT=" + strconv.Itoa(certs.LocalServingPort),
		"KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR=" + certs.LocalServingCertDir,
	}, env...), health)
	ready()

	ready = step("webhook registered from the chart's MutatingWebhookConfiguration")
	c.register(ctx, t, base64.StdEncoding.EncodeToString(certs.LocalServingCAData))
	ready()
	return c
}

// runInjector starts the injector and waits until it is ready; at the end of the test it is
// stopped with SIGTERM, as kubelet stops it, and its log is shown if the test failed.
func (c *cluster) runInjector(ctx context.Context, t *testing.T, injector string, env []string, health int) {
	t.Helper()
	logFile, err := os.Create(c.injectorLog)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(injector, "--webhook-host=127.0.0.1", "--metrics-bind-address=0",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", health))
	// Only the settings given: KUMA_ variables of the caller's shell would change what is shown.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUMA_") && !strings.HasPrefix(kv, "KUBECONFIG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(c.injectorLog)
			t.Logf("the injector's log:\n%s", log)
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/readyz", health)
	deadline := time.Now().Add(readyTimeout)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(c.injectorLog)
			t.Fatalf("the injector stopped before it was ready: %v\n%s", err, log)
		case <-ctx.Done():
			t.Fatalf("interrupted while waiting for the injector")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the injector was not ready within %s", readyTimeout)
		}
	}
}

// register applies the chart's MutatingWebhookConfiguration, pointed at the local injector.
func (c *cluster) register(ctx context.Context, t *testing.T, caBundle string) {
	t.Helper()
	manifest, err := charts.Render(ctx, charts.Release{Name: "meshinit", Namespace: systemNamespace, KubeVersion: kubeVersion,
		Values: map[string]any{"webhook": map[string]any{"url": c.WebhookURL}, "tls": map[string]any{"mode": "secret", "caBundle": caBundle}}})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := charts.Objects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		if err := c.Client.Patch(ctx, obj, client.Apply, client.FieldOwner("meshinit-e2e"), client.ForceOwnership); err != nil {
			t.Fatalf("applying %s %s: %v", obj.GetKind(), obj.GetName(), err)
		}
	}
}

// injection is the injector's log entry for an injected pod.
type injection struct {
	Reason   string            `json:"reason"`
	Settings []webhook.Setting `json:"settings"`
	Warnings []string          `json:"warnings"`
}

// injectionOf finds in the injector's log why and how it injected the pod namespace/name.
func (c *cluster) injectionOf(t *testing.T, namespace, name string) injection {
	t.Helper()
	data, err := os.ReadFile(c.injectorLog)
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

// freePort is a TCP port free on 127.0.0.1 now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

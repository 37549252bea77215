package perf

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni/relay"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

var lookupTime = regexp.MustCompile(`lookup=([0-9.]+[µnm]?s)`)

// BenchmarkKumaCNIAdd runs, in turn and in fresh network namespaces, kuma-cni's ADD for an
// injected pod (a process started as a runtime starts it, reading the pod from a real API server)
// and kuma-init applying the very same configuration from the file the webhook projects. The
// plugin's own time to read the pod, which it logs, is taken off its time: the API server's
// answer is not the plugin's to speed up.
func BenchmarkKumaCNIAdd(b *testing.B) {
	prereq.Root(b)
	env := kubeenv.Start(b)
	kumaCNI, kumaInit := binaries.Build(b, "kuma-cni"), binaries.Build(b, "kuma-init")
	res, err := (&inject.Injector{Config: testconfig.Default(), NativeSidecars: true}).Inject(
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx"}}}},
		"default", map[string]string{api.LabelSidecarInjection: "enabled"})
	if err != nil {
		b.Fatal(err)
	}
	if err := env.Client.Create(context.Background(), res.Pod); err != nil {
		b.Fatal(err)
	}
	configFile := filepath.Join(b.TempDir(), "config.yaml")
	if err := os.WriteFile(configFile, []byte(res.Pod.Annotations[api.AnnotationTransparentProxyConfig]), 0o644); err != nil {
		b.Fatal(err)
	}
	// install-cni's socket, as a node has it: kuma-cni sends its lines and result there too.
	socket := filepath.Join(b.TempDir(), relay.SocketName)
	r, err := relay.Listen(socket)
	if err != nil {
		b.Fatal(err)
	}
	var results atomic.Int64
	go func() {
		_ = r.Serve(relay.Handler{Log: func(map[string]any) {}, Outcome: func(relay.Outcome) { results.Add(1) }})
	}()
	b.Cleanup(func() { _ = r.Close() })
	netconf, _ := json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": "bench", "type": "kuma-cni", "log_level": "debug",
		"log_socket": socket, "kubernetes": map[string]any{"kubeconfig": env.WriteKubeconfig(b)}})

	var add, lookups, init time.Duration
	for b.Loop() {
		b.StopTimer()
		nsCNI, nsInit := netkit.NewBare(b), netkit.NewBare(b)
		b.StartTimer()
		took, lookup := runPlugin(b, kumaCNI, nsCNI, netconf)
		add, lookups = add+took, lookups+lookup
		init += timed(b, nsInit, exec.Command(kumaInit, "--config", configFile), "")
		b.StopTimer()
		nsCNI.Delete(b)
		nsInit.Delete(b)
		b.StartTimer()
	}
	n := float64(b.N)
	if err := poll.Wait(context.Background(), func() (bool, error) { return results.Load() == int64(b.N), nil }); err != nil {
		b.Errorf("install-cni's socket got %d results of %d ADDs", results.Load(), b.N)
	}
	b.ReportMetric(float64((add-lookups).Microseconds())/n, "kuma-cni-add-us")
	b.ReportMetric(float64(lookups.Microseconds())/n, "pod-lookup-us")
	b.ReportMetric(float64(init.Microseconds())/n, "kuma-init-us")
	b.ReportMetric(float64(add-lookups)/float64(init), "x-kuma-init")
}

// runPlugin runs kuma-cni's ADD as a container runtime would, from the host's namespace, and
// returns how long it took and how long of it went to reading the pod.
func runPlugin(b *testing.B, plugin string, ns *netkit.Namespace, netconf []byte) (took, lookup time.Duration) {
	cmd := exec.Command(plugin)
	cmd.Env = append(os.Environ(), "CNI_COMMAND=ADD", "CNI_CONTAINERID=bench-"+ns.Name, "CNI_NETNS="+ns.Path,
		"CNI_IFNAME=eth0", "CNI_PATH="+filepath.Dir(plugin), "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=bench")
	cmd.Stdin = bytes.NewReader(netconf)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if out, err := cmd.Output(); err != nil {
		b.Fatalf("kuma-cni ADD: %v\n%s%s", err, out, stderr.String())
	}
	took = time.Since(start)
	m := lookupTime.FindSubmatch(stderr.Bytes())
	if m == nil {
		b.Fatalf("kuma-cni logged no lookup time:\n%s", stderr.String())
	}
	lookup, err := time.ParseDuration(string(m[1]))
	if err != nil {
		b.Fatal(err)
	}
	return took, lookup
}

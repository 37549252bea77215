package kumacontract

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshinit/meshinit/api"
)

// TestKumaReadsWhatMeshinitWrites reads the document and the annotations of every pod the
// webhook's goldens inject as Kuma's readers do: kumactl reads the whole document, kuma-dp the
// listeners it must open (which must be the rules' redirect ports), and the pod converter of the
// control planes 2.9–2.14 the pod's annotations.
func TestKumaReadsWhatMeshinitWrites(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "webhook", "testdata", "golden", "*.out.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens: %v", err)
	}
	injected := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "# result: injected") {
			continue
		}
		injected++
		t.Run(strings.TrimSuffix(filepath.Base(file), ".out.yaml"), func(t *testing.T) {
			var pod corev1.Pod
			if err := yaml.Unmarshal(data, &pod); err != nil {
				t.Fatal(err)
			}
			text := pod.Annotations[api.AnnotationTransparentProxyConfig]
			if _, err := ReadDocument(text); err != nil {
				t.Errorf("kumactl would refuse the document: %v", err)
			}
			view, err := ReadAsDataplane(text)
			if err != nil {
				t.Fatalf("kuma-dp would refuse the document: %v", err)
			}
			ours, err := api.ParseTransparentProxyConfig([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			if view.InboundEnabled != ours.Redirect.Inbound.Enabled || uint16(view.InboundPort) != ours.Redirect.Inbound.Port ||
				view.OutboundEnabled != ours.Redirect.Outbound.Enabled || uint16(view.OutboundPort) != ours.Redirect.Outbound.Port ||
				view.DNSEnabled != ours.Redirect.DNS.Enabled || uint16(view.DNSPort) != ours.Redirect.DNS.Port {
				t.Errorf("kuma-dp would listen on %+v, the rules redirect to %+v", view, ours.Redirect)
			}
			if err := ConvertPod(pod.Annotations); err != nil {
				t.Errorf("Kuma 2.9-2.14's pod converter would build no Dataplane: %v", err)
			}
		})
	}
	if injected < 20 {
		t.Errorf("only %d injected goldens", injected)
	}
}

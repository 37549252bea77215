package install

import (
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshinit/meshinit/cni/install/testnode"
)

func TestKubeconfigServer(t *testing.T) {
	n := testnode.New(t, "token-1\n")
	for host, want := range map[string]string{
		"10.96.0.1":              "https://10.96.0.1:6443",
		"fd00:10:96::1":          "https://[fd00:10:96::1]:6443",
		"kubernetes.default.svc": "https://kubernetes.default.svc:6443",
	} {
		cfg, err := LoadConfig(n.Env("KUBERNETES_SERVICE_HOST="+host, "KUBERNETES_SERVICE_PORT=6443"))
		if err != nil {
			t.Fatal(err)
		}
		data, err := kubeconfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		kc, err := clientcmd.Load(data)
		if err != nil {
			t.Fatal(err)
		}
		if got := kc.Clusters["kuma-cni"].Server; got != want {
			t.Errorf("server for %s: %q, want %q", host, got, want)
		}
		if got := kc.AuthInfos["kuma-cni"].Token; got != "token-1" {
			t.Errorf("token %q: the trailing newline should go", got)
		}
		// kuma-cni builds its client from it as any client-go user would.
		if _, err := clientcmd.NewDefaultClientConfig(*kc, nil).ClientConfig(); err != nil {
			t.Errorf("client-go refuses the kubeconfig: %v", err)
		}
	}
}

func TestKubeconfigNeedsToken(t *testing.T) {
	n := testnode.New(t, " \n")
	cfg, err := LoadConfig(n.Env())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kubeconfig(cfg); err == nil || !strings.Contains(err.Error(), "token") || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("an empty token gives %v", err)
	}
}

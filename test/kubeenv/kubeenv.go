// Package kubeenv starts a real control plane for tests: etcd and kube-apiserver from the
// repository's bin/ (provisioned by hack/provision.sh), through controller-runtime's envtest.
package kubeenv

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshinit/meshinit/test/prereq"
)

// KubeVersion is the version of bin/kube-apiserver (hack/tools pins it), which tests render the
// chart for.
const KubeVersion = "v1.37.0"

// startTimeout is generous: on two busy cores kube-apiserver takes several seconds to be ready.
const startTimeout = 60 * time.Second

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
}

// Environment returns an envtest environment on the binaries in bin/, not yet started. Suites that
// share one control plane start it through Shared; single tests use Start.
func Environment() (*envtest.Environment, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := prereq.FindRepoRoot(wd)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(root, "bin")
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("kubeenv: %s is missing from %s (run: make provision)", name, bin)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  startTimeout,
	}
	// Debian's etcd 3.4 has no --unsafe-no-fsync; on tmpfs its fsyncs reach no disk.
	if info, err := os.Stat("/dev/shm"); err == nil && info.IsDir() {
		dataDir, err := os.MkdirTemp("/dev/shm", "meshinit-etcd-")
		if err != nil {
			return nil, err
		}
		env.ControlPlane.Etcd = &envtest.Etcd{DataDir: dataDir}
	}
	return env, nil
}

// Start starts a control plane for one test and stops it when the test ends; options change the
// environment first, such as the API server's flags. Missing binaries fail the test under CI=true
// and skip it elsewhere.
func Start(t testing.TB, options ...func(*envtest.Environment)) *Env {
	t.Helper()
	env, err := Environment()
	if err != nil {
		prereq.Missing(t, "%v", err)
	}
	for _, option := range options {
		option(env)
	}
	cfg, err := env.Start()
	if err != nil {
		_ = Stop(env)
		t.Fatalf("starting the control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := Stop(env); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatalf("client for the control plane: %v", err)
	}
	return &Env{Environment: env, Config: cfg, Client: c}
}

// Stop stops a control plane from Environment and removes etcd's data.
func Stop(env *envtest.Environment) error {
	var dataDir string
	if env.ControlPlane.Etcd != nil {
		dataDir = env.ControlPlane.Etcd.DataDir
	}
	err := env.Stop()
	if dataDir != "" {
		_ = os.RemoveAll(dataDir)
	}
	return err
}

// WriteKubeconfig writes a kubeconfig reaching the control plane as its admin, as install-cni
// writes one for kuma-cni, and returns its path.
func (e *Env) WriteKubeconfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	c := e.Config
	kc := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"test": {Server: c.Host, CertificateAuthorityData: c.CAData}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"test": {ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}},
		Contexts:       map[string]*clientcmdapi.Context{"test": {Cluster: "test", AuthInfo: "test"}},
		CurrentContext: "test",
	}
	if err := clientcmd.WriteToFile(kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

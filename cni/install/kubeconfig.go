package install

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/internal/atomicfile"
)

// KubeconfigName is the file, in the net dir, of the kubeconfig kuma-cni reads, unless
// KUBECFG_FILE_NAME names another. Runtimes do not load it: it has no configuration extension.
const KubeconfigName = "kuma-cni-kubeconfig"

// kubeconfig renders kuma-cni's kubeconfig: the API server, its CA and this pod's service-account
// token, embedded, since kuma-cni runs on the host, where the container's files are not.
func kubeconfig(c *Config) ([]byte, error) {
	token, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the service-account token: %w", err)
	}
	token = bytes.TrimSpace(token)
	if len(token) == 0 {
		return nil, fmt.Errorf("the service-account token %s is empty", c.TokenFile)
	}
	ca, err := os.ReadFile(c.CAFile)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's CA: %w", err)
	}
	const name = "kuma-cni"
	return clientcmd.Write(clientcmdapi.Config{
		Clusters: map[string]*clientcmdapi.Cluster{name: {
			Server:                   c.apiServer(),
			CertificateAuthorityData: ca,
		}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{name: {Token: string(token)}},
		Contexts:       map[string]*clientcmdapi.Context{name: {Cluster: name, AuthInfo: name}},
		CurrentContext: name,
	})
}

// apiServer is the API server's URL.
func (c *Config) apiServer() string {
	return c.KubernetesServiceProtocol + "://" + net.JoinHostPort(c.KubernetesServiceHost, strconv.Itoa(int(c.KubernetesServicePort)))
}

// ensureKubeconfig writes the kubeconfig to path when it is missing or out of date (a rotated
// token), and reports whether it did.
func ensureKubeconfig(c *Config, path string) (bool, error) {
	data, err := kubeconfig(c)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() == 0o600 {
			return false, nil
		}
	}
	// 0600: it holds a token.
	_, err = atomicfile.Write(path, bytes.NewReader(data), 0o600, atomicfile.TempDir(conflist.TempDir))
	return true, err
}

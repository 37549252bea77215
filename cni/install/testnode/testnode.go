// Package testnode lays out what install-cni finds on a node, in temporary directories: the
// mounted CNI directories, a kubelet-style service-account directory and a kuma-cni binary; and
// reads and watches what is written there.
package testnode

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/fsnotify/fsnotify"
	"github.com/google/renameio/v2"

	"github.com/meshinit/meshinit/test/prereq"
)

// HostNetDir is the net dir's host path that the tests configure; kuma-cni's entry names the
// kubeconfig under it.
const HostNetDir = "/etc/cni/net.d"

// HostRunDir is the run dir's host path that the tests configure; kuma-cni's entry names the
// socket under it.
const HostRunDir = "/var/run/kuma-cni"

// Node is one node's directories.
type Node struct {
	NetDir, BinDir, ServiceAccountDir string
	// RunDir is where install-cni's socket is (MOUNTED_CNI_RUN_DIR); it makes it.
	RunDir string
	// Binary is the kuma-cni binary "in the image"; BinaryContent its bytes.
	Binary        string
	BinaryContent []byte
	// CA is the API server's CA in the service-account directory.
	CA []byte
	// generation counts token rotations, for kubelet-style directory names.
	generation int
}

// New makes a node whose service account holds token.
func New(t testing.TB, token string) *Node {
	t.Helper()
	root := t.TempDir()
	n := &Node{
		NetDir:            filepath.Join(root, "host", "etc", "cni", "net.d"),
		BinDir:            filepath.Join(root, "host", "opt", "cni", "bin"),
		ServiceAccountDir: filepath.Join(root, "serviceaccount"),
		RunDir:            filepath.Join(root, "host", "var", "run", "kuma-cni"),
		Binary:            filepath.Join(root, "kuma-cni"),
		BinaryContent:     append([]byte("\x7fELF"), rand.Text()...),
		CA:                []byte("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"),
	}
	for _, dir := range []string{n.NetDir, n.BinDir, n.ServiceAccountDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(n.Binary, n.BinaryContent, 0o755); err != nil {
		t.Fatal(err)
	}
	n.RotateToken(t, token)
	for _, name := range []string{"token", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(n.ServiceAccountDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// RotateToken gives the service account a new token the way kubelet does: a new timestamped
// directory, then the ..data symlink swapped to it by a rename.
func (n *Node) RotateToken(t testing.TB, token string) {
	t.Helper()
	n.generation++
	gen := filepath.Join(n.ServiceAccountDir, "..gen"+strconv.Itoa(n.generation))
	if err := os.Mkdir(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gen, "token"), []byte(token), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gen, "ca.crt"), n.CA, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := renameio.Symlink(filepath.Base(gen), filepath.Join(n.ServiceAccountDir, "..data")); err != nil {
		t.Fatal(err)
	}
}

// Env is install-cni's environment for this node, chained, followed by extra "NAME=value" entries
// that override it.
func (n *Node) Env(extra ...string) []string {
	return append([]string{
		"CNI_NET_DIR=" + HostNetDir,
		"MOUNTED_CNI_NET_DIR=" + n.NetDir,
		"MOUNTED_CNI_BIN_DIR=" + n.BinDir,
		"SERVICE_ACCOUNT_DIR=" + n.ServiceAccountDir,
		"CNI_RUN_DIR=" + HostRunDir,
		"MOUNTED_CNI_RUN_DIR=" + n.RunDir,
		"KUMA_CNI_BINARY=" + n.Binary,
		"KUBERNETES_SERVICE_HOST=10.96.0.1",
		"KUBERNETES_SERVICE_PORT=443",
		"READY_ADDR=127.0.0.1:0",
		"METRICS_ADDR=127.0.0.1:0",
	}, extra...)
}

// Net is the path of a file in the net dir.
func (n *Node) Net(name string) string { return filepath.Join(n.NetDir, name) }

// Provide writes a provider's network configuration into the net dir as providers do, by
// renaming a complete file into place, and returns its content. The content is the conflist
// package's fixture of that name, or data when given.
func (n *Node) Provide(t testing.TB, name string, data ...byte) []byte {
	t.Helper()
	if data == nil {
		var err error
		if data, err = os.ReadFile(Fixture(t, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := renameio.WriteFile(n.Net(name), data, 0o644, renameio.WithTempDir(n.NetDir)); err != nil {
		t.Fatal(err)
	}
	return data
}

// Fixture is the path of a provider's file in the conflist package's testdata.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(prereq.RepoRoot(t), "cni", "conflist", "testdata", name)
}

// ReadFile is the file at path; it fails t when the file cannot be read.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Watch watches dir until the test ends: the atomic renames of install-cni and of the providers
// replace a file's inode, so only a watch on the directory sees each of them.
func Watch(t testing.TB, dir string) *fsnotify.Watcher {
	t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Add(dir); err != nil {
		t.Fatal(err)
	}
	return w
}

// Drain discards the events w holds already.
func Drain(w *fsnotify.Watcher) {
	for {
		select {
		case <-w.Events:
		default:
			return
		}
	}
}

package faults

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/cni/install"
	"github.com/meshinit/meshinit/cni/install/testnode"
)

// TestInstallCNIKilledAndRestarted kills the install-cni binary with SIGKILL, so that none of its
// clean-up runs, and starts it again, as kubelet restarts a DaemonSet's container: it must find
// its own entry and files, add nothing twice, be ready again, and on SIGTERM still leave the node
// as it was before install. It logs the time from start to ready, first and after the restart.
func TestInstallCNIKilledAndRestarted(t *testing.T) {
	n := testnode.New(t, "token-1")
	orig := n.Provide(t, calico)
	addr := freeAddr(t)

	p := startInstallCNI(t, n, addr)
	first := p.waitReady(t)
	if err := p.signal(t, syscall.SIGKILL); !killed(err) {
		t.Fatalf("install-cni ended with %v, want killed by SIGKILL", err)
	}
	// Nothing was cleaned up: the runtime keeps calling a kuma-cni that works.
	checkInstalled(t, n, orig)

	p = startInstallCNI(t, n, addr)
	again := p.waitReady(t)
	checkInstalled(t, n, orig)
	t.Logf("start to ready: %v on a fresh node, %v after SIGKILL", first.Round(time.Microsecond), again.Round(time.Microsecond))

	terminate(t, p, n, orig)
}

// TestInstallCNIKilledWhileWriting kills install-cni the moment it starts writing a file, as the
// OOM killer might: while it heals the conflist the provider keeps rewriting, and while it copies
// a large binary back. Whatever the kill cuts short, the runtime must find a whole conflist and
// never a partial kuma-cni, and the next install-cni must put everything back and, on SIGTERM,
// leave nothing behind, the temporary files of the writes cut short included.
func TestInstallCNIKilledWhileWriting(t *testing.T) {
	t.Run("healing the conflist", func(t *testing.T) {
		const rounds = 10
		n := testnode.New(t, "token-1")
		orig := n.Provide(t, calico)
		addr := freeAddr(t)
		w := testnode.Watch(t, n.NetDir)
		p := startInstallCNI(t, n, addr)
		p.waitReady(t)

		var last []byte
		var readies []time.Duration
		for round := range rounds {
			testnode.Drain(w)
			// The provider rewrites its file back to back until the kill, each time with another
			// mtu.
			stop, stopped := make(chan struct{}), make(chan []byte)
			go func() {
				var data []byte
				for i := 0; ; i++ {
					select {
					case <-stop:
						stopped <- data
						return
					default:
					}
					data = bytes.Replace(orig, []byte(`"mtu": 0,`), fmt.Appendf(nil, `"mtu": %d,`, 1000*round+i), 1)
					if err := provide(n.NetDir, data); err != nil {
						t.Error(err)
					}
				}
			}()
			waitWriting(t, w)
			err := p.signal(t, syscall.SIGKILL)
			close(stop)
			last = <-stopped
			if !killed(err) {
				t.Fatalf("round %d: install-cni ended with %v, want killed by SIGKILL", round, err)
			}
			data, err := os.ReadFile(n.Net(calico))
			if err != nil {
				t.Fatal(err)
			}
			if entries := kumaEntries(data); entries < 0 || entries > 1 {
				t.Fatalf("round %d: after the kill %s holds %d kuma-cni entries (-1: not a conflist):\n%s", round, calico, entries, data)
			}

			p = startInstallCNI(t, n, addr)
			readies = append(readies, p.waitReady(t))
			waitHealed(t, w, n, last)
		}
		t.Logf("start to ready after a SIGKILL during a heal: %s", distribution(readies))
		terminate(t, p, n, last)
	})

	t.Run("copying the binary", func(t *testing.T) {
		const rounds = 3
		n := testnode.New(t, "token-1")
		// Large enough that the kill can land while the copy runs.
		n.BinaryContent = bytes.Repeat(n.BinaryContent, (16<<20)/len(n.BinaryContent))
		if err := os.WriteFile(n.Binary, n.BinaryContent, 0o755); err != nil {
			t.Fatal(err)
		}
		orig := n.Provide(t, calico)
		addr := freeAddr(t)
		w := testnode.Watch(t, n.BinDir)
		p := startInstallCNI(t, n, addr)
		p.waitReady(t)
		bin := filepath.Join(n.BinDir, "kuma-cni")

		for round := range rounds {
			testnode.Drain(w)
			// A node clean-up deletes the binary; install-cni copies it back.
			if err := os.Remove(bin); err != nil {
				t.Fatal(err)
			}
			waitWriting(t, w)
			if err := p.signal(t, syscall.SIGKILL); !killed(err) {
				t.Fatalf("round %d: install-cni ended with %v, want killed by SIGKILL", round, err)
			}
			if data, err := os.ReadFile(bin); err == nil && !bytes.Equal(data, n.BinaryContent) {
				t.Fatalf("round %d: after the kill the runtime finds a kuma-cni of %d bytes, not the image's %d", round, len(data), len(n.BinaryContent))
			}
			p = startInstallCNI(t, n, addr)
			p.waitReady(t)
			checkInstalled(t, n, orig)
		}
		terminate(t, p, n, orig)
	})
}

// provide writes the provider's conflist atomically, through a temporary file of its own.
func provide(dir string, data []byte) error {
	tmp := filepath.Join(dir, providerTemp)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, calico))
}

const providerTemp = ".provider.tmp"

// waitWriting waits until install-cni starts writing a file in the watched directory: a hidden
// entry, its temporary file or directory, appears.
func waitWriting(t *testing.T, w *fsnotify.Watcher) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-w.Events:
			name := filepath.Base(ev.Name)
			if ev.Has(fsnotify.Create) && strings.HasPrefix(name, ".") && name != providerTemp {
				return
			}
		case err := <-w.Errors:
			t.Fatal(err)
		case <-timeout:
			t.Fatal("install-cni started no write within 10s")
		}
	}
}

// killed reports whether err is the end of a process killed by SIGKILL.
func killed(err error) bool {
	exit, ok := errors.AsType[*exec.ExitError](err)
	if !ok {
		return false
	}
	status, ok := exit.Sys().(syscall.WaitStatus)
	return ok && status.Signaled() && status.Signal() == syscall.SIGKILL
}

// checkInstalled checks that kuma-cni is installed on n exactly once: one entry in the provider's
// conflist, whose other bytes are want, the image's binary and the kubeconfig.
func checkInstalled(t *testing.T, n *testnode.Node, want []byte) {
	t.Helper()
	data, err := os.ReadFile(n.Net(calico))
	if err != nil {
		t.Fatal(err)
	}
	if entries := kumaEntries(data); entries != 1 {
		t.Errorf("%s holds %d kuma-cni entries, want 1:\n%s", calico, entries, data)
	}
	if without, err := conflist.Remove(n.Net(calico), data); err != nil || !bytes.Equal(without, want) {
		t.Errorf("%s without kuma-cni is not the provider's file (%v):\n%s", calico, err, without)
	}
	if bin, err := os.ReadFile(filepath.Join(n.BinDir, "kuma-cni")); err != nil || !bytes.Equal(bin, n.BinaryContent) {
		t.Errorf("the kuma-cni binary on the node is not the image's (%v)", err)
	}
	if _, err := os.Stat(n.Net(install.KubeconfigName)); err != nil {
		t.Errorf("kuma-cni's kubeconfig: %v", err)
	}
}

// terminate stops p as kubelet does, and checks that the node holds only the provider's conflist,
// byte for byte want, and no file of install-cni's.
func terminate(t *testing.T, p *installCNI, n *testnode.Node, want []byte) {
	t.Helper()
	if err := p.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("install-cni ended with %v after SIGTERM, want exit code 0", err)
	}
	if got, err := os.ReadFile(n.Net(calico)); err != nil || !bytes.Equal(got, want) {
		t.Errorf("after SIGTERM %s is not the provider's file (%v):\n%s", calico, err, got)
	}
	for dir, want := range map[string][]string{n.NetDir: {calico}, n.BinDir: nil} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if e.Name() != providerTemp {
				names = append(names, e.Name())
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("after SIGTERM %s holds %q, want %q", dir, names, want)
		}
	}
}

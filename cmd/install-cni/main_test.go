package main

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/cni/install"
	"github.com/meshinit/meshinit/cni/install/testnode"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/logbuf"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
)

// TestSIGTERMUninstalls runs install-cni as the DaemonSet does and stops it as kubelet does.
func TestSIGTERMUninstalls(t *testing.T) {
	bin := binaries.Build(t, "install-cni")
	for _, tc := range []struct{ file, installed string }{
		{"10-calico.conflist", "10-calico.conflist"},
		{"10-calico.conf", "10-calico.conflist"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			n := testnode.New(t, "token-1")
			orig := n.Provide(t, tc.file)
			addr := freeAddr(t)
			p := start(t, bin, n.Env("READY_ADDR="+addr))
			stderr := p.stderr

			err := poll.Wait(t.Context(), func() (bool, error) {
				if p.exited() {
					return false, fmt.Errorf("install-cni ended: %v", p.err)
				}
				return ready(addr), nil
			})
			if err != nil {
				t.Fatalf("/ready never said 200: %v; install-cni's log:\n%s", err, stderr)
			}
			if data, err := os.ReadFile(n.Net(tc.installed)); err != nil || !conflist.HasEntry(data) {
				t.Fatalf("kuma-cni is not in %s (%v); log:\n%s", tc.installed, err, stderr)
			}

			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if err := p.wait(); err != nil {
				t.Fatalf("install-cni ended with %v, want exit code 0; log:\n%s", err, stderr)
			}
			if got, err := os.ReadFile(n.Net(tc.file)); err != nil || !bytes.Equal(got, orig) {
				t.Errorf("after SIGTERM %s is not the original (%v):\n%s", tc.file, err, got)
			}
			entries, _ := os.ReadDir(n.NetDir)
			if len(entries) != 1 {
				t.Errorf("the net dir holds %d files, want only %s; log:\n%s", len(entries), tc.file, stderr)
			}
			for _, path := range []string{filepath.Join(n.BinDir, "kuma-cni"), n.Net(install.KubeconfigName)} {
				if _, err := os.Stat(path); !os.IsNotExist(err) {
					t.Errorf("%s is still there after SIGTERM", path)
				}
			}
			for _, line := range []string{`msg="removed the kuma-cni binary"`, `msg="removed kuma-cni's kubeconfig"`, `msg=stopped`} {
				if !strings.Contains(stderr.String(), line) {
					t.Errorf("the log does not say %s:\n%s", line, stderr)
				}
			}
		})
	}
}

// TestBadSettingsStopAtStart checks that install-cni refuses to start, naming each bad variable,
// and installs nothing.
func TestBadSettingsStopAtStart(t *testing.T) {
	bin := binaries.Build(t, "install-cni")
	n := testnode.New(t, "token-1")
	orig := n.Provide(t, "10-calico.conflist")
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{[]string{"CNI_LOG_LEVEL=loud", "CHAINED_CNI_PLUGIN=maybe"},
			[]string{`CNI_LOG_LEVEL: "loud" is not a log level`, `CHAINED_CNI_PLUGIN: "maybe" is not a boolean`}},
		{[]string{"MOUNTED_CNI_BIN_DIR=" + filepath.Join(n.BinDir, "missing")},
			[]string{`MOUNTED_CNI_BIN_DIR: "` + filepath.Join(n.BinDir, "missing") + `" is not a directory (it does not exist)`}},
	} {
		p := start(t, bin, n.Env(tc.env...))
		stderr := p.stderr
		err := p.wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%v: ended with %v, want exit code 2", tc.env, err)
		}
		for _, want := range tc.want {
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("stderr does not say %s:\n%s", want, stderr)
			}
		}
	}
	if got, _ := os.ReadFile(n.Net("10-calico.conflist")); !bytes.Equal(got, orig) {
		t.Error("a refused start changed the conflist")
	}
	if _, err := os.Stat(filepath.Join(n.BinDir, "kuma-cni")); !os.IsNotExist(err) {
		t.Error("a refused start copied the binary")
	}
}

// process is a running install-cni.
type process struct {
	cmd    *exec.Cmd
	stderr *logbuf.Buffer
	// done delivers Wait's result once; err keeps it.
	done chan struct{}
	err  error
}

// start starts install-cni with exactly env, and kills it at the end of the test if it still runs.
func start(t *testing.T, bin string, env []string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin), stderr: &logbuf.Buffer{}, done: make(chan struct{})}
	p.cmd.Env, p.cmd.Stderr = env, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait returns how the process ended.
func (p *process) wait() error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		return errors.New("still running after 30s")
	}
}

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", netkit.FreePort(t))
}

func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

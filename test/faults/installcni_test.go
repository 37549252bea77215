package faults

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/cni/install/testnode"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/logbuf"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
)

// calico is the provider's conflist the install-cni tests chain kuma-cni into.
const calico = "10-calico.conflist"

// installCNI is a running install-cni binary, started as the DaemonSet starts it.
type installCNI struct {
	cmd   *exec.Cmd
	log   *logbuf.Buffer
	ready string // the address of GET /ready
	done  chan struct{}
	err   error // how it ended, once done is closed
}

// startInstallCNI runs install-cni for node n, chained into calico, serving /ready on readyAddr.
// The test's end kills it if it still runs.
func startInstallCNI(t *testing.T, n *testnode.Node, readyAddr string) *installCNI {
	t.Helper()
	p := &installCNI{cmd: exec.Command(binaries.Build(t, "install-cni")), log: &logbuf.Buffer{}, ready: readyAddr, done: make(chan struct{})}
	p.cmd.Env = n.Env("CNI_CONF_NAME="+calico, "READY_ADDR="+readyAddr)
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("install-cni's log:\n%s", p.log)
		}
	})
	return p
}

// waitReady waits for GET /ready to say 200, and returns how long that took from the call.
func (p *installCNI) waitReady(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	poll.Until(t, "install-cni's /ready says 200", func() (bool, error) {
		select {
		case <-p.done:
			return false, fmt.Errorf("install-cni ended (%v)", p.err)
		default:
		}
		resp, err := http.Get("http://" + p.ready + "/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	return time.Since(start)
}

// signal sends sig and waits for the process to end; it returns how it ended.
func (p *installCNI) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(30 * time.Second):
		t.Fatalf("install-cni still runs 30s after %v", sig)
		return nil
	}
}

// freeAddr is a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", netkit.FreePort(t))
}

// kumaEntries counts kuma-cni's entries in a conflist's plugin chain; -1 when data is not a
// conflist.
func kumaEntries(data []byte) int {
	var list struct {
		Plugins []struct {
			Type string `json:"type"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		return -1
	}
	n := 0
	for _, p := range list.Plugins {
		if p.Type == cni.PluginType {
			n++
		}
	}
	return n
}

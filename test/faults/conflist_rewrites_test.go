package faults

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/cni/install/testnode"
)

// rewrites is how many times in a row the provider writes its conflist without kuma-cni.
const rewrites = 100

// TestConflistRewrittenRepeatedly runs the install-cni binary while the provider rewrites its
// conflist without kuma-cni, 100 times waiting for each heal and then 100 times back to back. Each
// rewrite differs (Calico's mtu), so that a heal is seen to start from the provider's latest file:
// kuma-cni back exactly once, every other byte the provider's. It logs the heal latency, from
// the rename that puts the provider's file in place to the one that puts kuma-cni back.
func TestConflistRewrittenRepeatedly(t *testing.T) {
	n := testnode.New(t, "token-1")
	orig := n.Provide(t, calico)
	version := func(i int) []byte {
		v := bytes.Replace(orig, []byte(`"mtu": 0,`), fmt.Appendf(nil, `"mtu": %d,`, 1400+i), 1)
		if bytes.Equal(v, orig) {
			t.Fatalf("the %s fixture has no \"mtu\": 0 to vary", calico)
		}
		return v
	}
	p := startInstallCNI(t, n, freeAddr(t))
	p.waitReady(t)
	w := testnode.Watch(t, n.NetDir)

	t.Run("healed before the next rewrite", func(t *testing.T) {
		heals := make([]time.Duration, 0, rewrites)
		for i := range rewrites {
			want := n.Provide(t, calico, version(i)...)
			start := time.Now()
			waitHealed(t, w, n, want)
			heals = append(heals, time.Since(start))
		}
		t.Logf("heal latency over %d rewrites, each healed before the next: %s", rewrites, distribution(heals))
	})

	var last []byte
	t.Run("back to back", func(t *testing.T) {
		start := time.Now()
		for i := range rewrites {
			last = n.Provide(t, calico, version(rewrites+i)...)
		}
		storm := time.Since(start)
		waitHealed(t, w, n, last)
		t.Logf("%d rewrites back to back in %v; kuma-cni back %v after the last", rewrites, storm.Round(time.Millisecond),
			(time.Since(start) - storm).Round(time.Millisecond))
	})

	if err := p.signal(t, syscall.SIGTERM); err != nil {
		t.Fatalf("install-cni ended with %v after SIGTERM, want exit code 0", err)
	}
	if got, err := os.ReadFile(n.Net(calico)); err != nil || !bytes.Equal(got, last) {
		t.Errorf("after SIGTERM %s is not the provider's last file (%v):\n%s", calico, err, got)
	}
}

// waitHealed waits until the provider's conflist holds want with kuma-cni put back exactly once.
// A file that holds kuma-cni on other content than want never heals by itself: the installer sees
// its entry there and has nothing to do, so that fails at once.
func waitHealed(t *testing.T, w *fsnotify.Watcher, n *testnode.Node, want []byte) {
	t.Helper()
	path := n.Net(calico)
	timeout := time.After(10 * time.Second)
	for {
		data, err := os.ReadFile(path)
		if err == nil && conflist.HasEntry(data) {
			if entries := kumaEntries(data); entries != 1 {
				t.Fatalf("%s holds %d kuma-cni entries, want 1:\n%s", calico, entries, data)
			}
			without, err := conflist.Remove(path, data)
			if err != nil || !bytes.Equal(without, want) {
				t.Fatalf("kuma-cni came back on other content than the provider's latest (%v):\n%s\nwant the provider's:\n%s", err, data, want)
			}
			return
		}
		select {
		case <-w.Events:
		case err := <-w.Errors:
			t.Fatal(err)
		case <-timeout:
			t.Fatalf("kuma-cni is not back in %s 10s after the rewrite", calico)
		}
	}
}

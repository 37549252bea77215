package plugin

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes a kubeconfig for server with token to path. client-go sends tokens over
// TLS only, so the test servers are TLS servers, whose certificate is not checked.
func writeKubeconfig(t *testing.T, path, server, token string) {
	t.Helper()
	err := clientcmd.WriteToFile(clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"c": {Server: server, InsecureSkipTLSVerify: true}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"u": {Token: token}},
		Contexts:       map[string]*clientcmdapi.Context{"x": {Cluster: "c", AuthInfo: "u"}},
		CurrentContext: "x",
	}, path)
	if err != nil {
		t.Fatal(err)
	}
}

// TestHungAPIServer: an API server that takes requests and never answers costs each attempt its own
// timeout, not the lookup's whole budget, so that a later attempt (another API server behind the
// address, or the same one recovered) gets its chance within it.
func TestHungAPIServer(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kubeconfig, srv.URL, "t")
	a, err := NewAPIServer(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	a.AttemptTimeout, a.Backoff, a.MaxBackoff = 200*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = a.Pod(ctx, "demo", "app")
	took := time.Since(start)
	want := fmt.Sprintf("gave up after %d attempts", defaultAttempts)
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "no answer within 200ms") {
		t.Fatalf("error %v; want it to say %q and that an attempt got no answer within 200ms", err, want)
	}
	if got := requests.Load(); got != defaultAttempts {
		t.Errorf("the API server saw %d requests, want %d: one per attempt", got, defaultAttempts)
	}
	t.Logf("%d attempts in %v: %v", defaultAttempts, took.Round(time.Millisecond), err)

	// With the budget shorter than the attempts, the budget ends the lookup and says so.
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := a.Pod(ctx, "demo", "app"); err == nil || !strings.Contains(err.Error(), "the lookup's budget") {
		t.Errorf("error %v; want it to name the lookup's budget", err)
	}
}

// TestKubeconfigReplaced: a token the API server refuses (401) is retried with the kubeconfig read
// again, as install-cni's successor writes one with its own token during a rollout.
func TestKubeconfigReplaced(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer new" {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, `{"metadata":{"annotations":{"a":"b"}}}`)
	}))
	t.Cleanup(srv.Close)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	writeKubeconfig(t, kubeconfig, srv.URL, "old")
	a, err := NewAPIServer(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	a.Backoff, a.MaxBackoff = 50*time.Millisecond, 50*time.Millisecond
	// Replaced after kuma-cni read it, as install-cni does, by a rename.
	tmp := kubeconfig + ".new"
	writeKubeconfig(t, tmp, srv.URL, "new")
	if err := os.Rename(tmp, kubeconfig); err != nil {
		t.Fatal(err)
	}
	pod, err := a.Pod(context.Background(), "demo", "app")
	if err != nil || pod.Metadata.Annotations["a"] != "b" {
		t.Fatalf("pod %+v, %v; want it read with the new token", pod, err)
	}
}

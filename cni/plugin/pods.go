package plugin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Pod is what the plugin needs of a pod: its annotations, and its containers' names and
// environment (see checkAdmitted).
type Pod struct {
	Metadata struct {
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		InitContainers []container `json:"initContainers"`
		Containers     []container `json:"containers"`
	} `json:"spec"`
}

// PodSource looks pods up.
type PodSource interface {
	Pod(ctx context.Context, namespace, name string) (*Pod, error)
}

// APIServer looks pods up through the API server named by a kubeconfig. It reads the pod as JSON
// into the little the plugin needs rather than through a typed clientset, whose initialisation
// would be a measurable part of every pod's network setup (BenchmarkKumaCNIAdd).
type APIServer struct {
	kubeconfig string
	// loaded is the kubeconfig file as last read, to notice when install-cni replaces it.
	loaded os.FileInfo
	client *http.Client
	host   string
	// Attempts bounds the tries of a lookup; a failed try waits twice as long as the one before,
	// from Backoff up to MaxBackoff.
	Attempts            int
	Backoff, MaxBackoff time.Duration
	// AttemptTimeout bounds each try, so that an API server that accepts the request and never
	// answers costs one try, not the lookup's whole budget.
	AttemptTimeout time.Duration
}

// The defaults try for about 8.5s when each try fails at once, within lookupTimeout: long enough to
// ride out a restart of the API server, which takes seconds, so that pods created meanwhile do not
// fail their ADD. A GET of a pod takes milliseconds; a try that takes 2s is given up for a new
// one, which a restarted or failed-over API server may answer.
const (
	defaultAttempts       = 12
	defaultBackoff        = 100 * time.Millisecond
	defaultMaxBackoff     = time.Second
	defaultAttemptTimeout = 2 * time.Second
)

// NewAPIServer reads the kubeconfig install-cni wrote.
func NewAPIServer(kubeconfig string) (*APIServer, error) {
	a := &APIServer{kubeconfig: kubeconfig, Attempts: defaultAttempts, Backoff: defaultBackoff,
		MaxBackoff: defaultMaxBackoff, AttemptTimeout: defaultAttemptTimeout}
	if err := a.load(); err != nil {
		return nil, err
	}
	return a, nil
}

// load reads the kubeconfig.
func (a *APIServer) load() error {
	fi, err := os.Stat(a.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading the kubeconfig %s: %w", a.kubeconfig, err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", a.kubeconfig)
	if err != nil {
		return fmt.Errorf("reading the kubeconfig %s: %w", a.kubeconfig, err)
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("the kubeconfig %s: %w", a.kubeconfig, err)
	}
	a.client, a.host, a.loaded = client, cfg.Host, fi
	return nil
}

// reload reads the kubeconfig again if install-cni replaced it since (a DaemonSet rollout: the
// old pod's token is revoked with the pod, and its successor writes its own).
func (a *APIServer) reload() {
	fi, err := os.Stat(a.kubeconfig)
	if err != nil || (a.loaded != nil && os.SameFile(fi, a.loaded) && fi.ModTime().Equal(a.loaded.ModTime()) && fi.Size() == a.loaded.Size()) {
		return
	}
	_ = a.load() // on failure the old client stays; the next try says what fails
}

// errNotFound is a lookup the API server answered with 404: retrying cannot help.
var errNotFound = errors.New("no such pod")

// permanentError is an answer retrying cannot change, such as 403: the ADD fails at once instead
// of after the whole retry window.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func (a *APIServer) Pod(ctx context.Context, namespace, name string) (*Pod, error) {
	start := time.Now()
	wait := a.Backoff
	for attempt := 1; ; attempt++ {
		pod, err := a.try(ctx, namespace, name)
		var permanent permanentError
		if err == nil || errors.Is(err, errNotFound) || errors.As(err, &permanent) {
			return pod, err
		}
		if attempt >= a.Attempts {
			return nil, fmt.Errorf("gave up after %d attempts in %v: %w", attempt, time.Since(start).Round(100*time.Millisecond), err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("gave up after %d attempts in %v, the lookup's budget: %w", attempt, time.Since(start).Round(100*time.Millisecond), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, a.MaxBackoff)
		a.reload()
	}
}

// try is one attempt, within AttemptTimeout and what is left of ctx.
func (a *APIServer) try(ctx context.Context, namespace, name string) (*Pod, error) {
	actx := ctx
	if a.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, a.AttemptTimeout)
		defer cancel()
	}
	pod, err := a.get(actx, namespace, name)
	if err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("reading the pod from the API server: no answer within %v", a.AttemptTimeout)
	}
	return pod, err
}
func (a *APIServer) get(ctx context.Context, namespace, name string) (*Pod, error) {
	u, err := url.JoinPath(a.host, "api/v1/namespaces", namespace, "pods", name)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading the pod from the API server: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading the pod from the API server: %w", err)
	case resp.StatusCode == http.StatusNotFound:
		return nil, errNotFound
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests &&
		resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusUnauthorized:
		// The request itself is refused (rights): the same one will be again. A token refused
		// (401) may be one install-cni is replacing: reload tries the kubeconfig again.
		return nil, permanentError{fmt.Errorf("the API server refused to read the pod: %s: %s", resp.Status, body)}
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("the API server answered %s: %s", resp.Status, body)
	}
	var pod Pod
	if err := json.Unmarshal(body, &pod); err != nil {
		return nil, fmt.Errorf("the API server's pod: %w", err)
	}
	return &pod, nil
}

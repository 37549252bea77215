package install

import (
	"fmt"
	"net/http"
)

// ServeHTTP answers GET /ready: 200 while kuma-cni is installed, 503 with the reason otherwise.
// The DaemonSet's readiness probe asks it, and the taint controller keeps pods off the node until
// it says 200.
func (in *Installer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path != "/ready":
		http.NotFound(w, r)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "only GET", http.StatusMethodNotAllowed)
	default:
		if reason := in.notReady.Load(); reason != nil {
			http.Error(w, *reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "installed")
	}
}

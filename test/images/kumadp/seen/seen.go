// Package seen is the record the kuma-dp stand-in (test/images/kumadp) serves at GET /standin on
// its readiness port, for tests to read.
package seen

import "time"

// Record is what the stand-in saw, served as JSON at GET /standin on the readiness port: how it
// was started (arguments, environment, credentials, mounts), so that a test can compare that with
// the pod spec the injector wrote, and each connection, DNS query, probe and signal it handled, so
// that a test can tell which traffic went through it.
type Record struct {
	Args []string `json:"args"`
	Env  []string `json:"env"`
	UID  int      `json:"uid"`
	GID  int      `json:"gid"`
	// Groups are the supplementary groups.
	Groups []int `json:"groups"`
	// CapEff and NoNewPrivs are the lines of /proc/self/status: the effective capabilities (hex)
	// and whether privileges can no longer be gained.
	CapEff     string  `json:"capEff"`
	NoNewPrivs string  `json:"noNewPrivs"`
	Mounts     []Mount `json:"mounts"`
	Events     []Event `json:"events"`
}

// Mount is a filesystem mounted in the container, other than /proc, /sys and /dev, with the files
// it holds (by path relative to it; the downward API's hidden ..data directories left out).
type Mount struct {
	Path     string          `json:"path"`
	ReadOnly bool            `json:"readOnly"`
	Files    map[string]File `json:"files,omitempty"`
}

// File is a file's size and SHA-256: enough to compare it with what should be there, without
// serving what it holds (a service account token).
type File struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Event is one thing the stand-in handled.
type Event struct {
	Time time.Time `json:"time"`
	// Kind is outbound, inbound, dns, probe or signal.
	Kind string `json:"kind"`
	From string `json:"from,omitempty"`
	// To is where a connection or query was headed (its original destination), or what a probe
	// probed.
	To string `json:"to,omitempty"`
	// Via is the local address of the stand-in's own connection to To.
	Via string `json:"via,omitempty"`
	// Detail is a probe's kind and path, or a signal's name.
	Detail string `json:"detail,omitempty"`
	// Status is a probe's answer.
	Status int    `json:"status,omitempty"`
	Err    string `json:"err,omitempty"`
}

package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

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

// maxEvents bounds the record: probes keep coming for the pod's whole life.
const maxEvents = 10000

// recorder keeps the record; its methods may be called at once.
type recorder struct {
	mu     sync.Mutex
	start  Record
	events []Event
}

// newRecorder records how this process was started.
func newRecorder() *recorder {
	r := &recorder{start: Record{Args: os.Args, Env: os.Environ(), UID: os.Getuid(), GID: os.Getgid()}}
	r.start.Groups, _ = os.Getgroups()
	r.start.CapEff, r.start.NoNewPrivs = procStatus("CapEff"), procStatus("NoNewPrivs")
	r.start.Mounts = mounts()
	return r
}

func (r *recorder) add(e Event) {
	e.Time = time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.events) == maxEvents {
		r.events = r.events[1:]
	}
	r.events = append(r.events, e)
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	r.mu.Lock()
	rec := r.start
	rec.Events = append([]Event(nil), r.events...)
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rec)
}

// procStatus is the value of a line of /proc/self/status.
func procStatus(key string) string {
	data, _ := os.ReadFile("/proc/self/status")
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// mounts lists the container's mounts but the kernel's and the runtime's own (/proc, /sys, /dev).
func mounts() []Mount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 {
			continue
		}
		p := fields[4]
		if p == "/proc" || p == "/sys" || p == "/dev" || strings.HasPrefix(p, "/proc/") || strings.HasPrefix(p, "/sys/") || strings.HasPrefix(p, "/dev/") {
			continue
		}
		m := Mount{Path: p, ReadOnly: strings.Split(fields[5], ",")[0] == "ro"}
		if p != "/" {
			m.Files = files(p)
		}
		out = append(out, m)
	}
	return out
}

// files hashes the regular files under dir, following the symbolic links the downward API and
// projected volumes make, and skipping their hidden ..-prefixed entries.
func files(dir string) map[string]File {
	out := map[string]File{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if strings.HasPrefix(d.Name(), "..") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p) // follows a link to its file
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(data)
		rel, _ := filepath.Rel(dir, p)
		out[rel] = File{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
		return nil
	})
	return out
}

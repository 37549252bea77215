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

	"github.com/meshinit/meshinit/test/images/kumadp/seen"
)

// maxEvents bounds the record: probes keep coming for the pod's whole life.
const maxEvents = 10000

// recorder keeps the record (seen.Record) the stand-in serves at GET /standin; its methods may be
// called at once.
type recorder struct {
	mu     sync.Mutex
	start  seen.Record
	events []seen.Event
}

// newRecorder records how this process was started.
func newRecorder() *recorder {
	r := &recorder{start: seen.Record{Args: os.Args, Env: os.Environ(), UID: os.Getuid(), GID: os.Getgid()}}
	r.start.Groups, _ = os.Getgroups()
	r.start.CapEff, r.start.NoNewPrivs = procStatus("CapEff"), procStatus("NoNewPrivs")
	r.start.Mounts = mounts()
	return r
}

func (r *recorder) add(e seen.Event) {
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
	rec.Events = append([]seen.Event(nil), r.events...)
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
func mounts() []seen.Mount {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []seen.Mount
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
		m := seen.Mount{Path: p, ReadOnly: strings.Split(fields[5], ",")[0] == "ro"}
		if p != "/" {
			m.Files = files(p)
		}
		out = append(out, m)
	}
	return out
}

// files hashes the regular files under dir, following the symbolic links the downward API and
// projected volumes make, and skipping their hidden ..-prefixed entries.
func files(dir string) map[string]seen.File {
	out := map[string]seen.File{}
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
		out[rel] = seen.File{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
		return nil
	})
	return out
}

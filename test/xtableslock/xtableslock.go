// Package xtableslock holds legacy iptables' host-wide lock for tests, and sees who waits for it:
// a test that holds it can show that an install waits for it, rather than hope it does.
package xtableslock

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Path is the lock legacy iptables takes on the whole host (XTABLES_LOCKFILE's default).
const Path = "/run/xtables.lock"

// Lock is a test's hold on the xtables lock: an open file description of its own, which
// conflicts with the one each iptables process opens.
type Lock struct {
	f *os.File
	// id is the file as /proc/locks names it: major:minor:inode.
	id string
}

// Open opens the lock file, creating it as iptables does; it is closed when the test ends.
func Open(t testing.TB) *Lock {
	t.Helper()
	f, err := os.OpenFile(Path, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	return &Lock{f: f, id: fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)}
}

// Hold takes the lock. It blocks while another test's iptables holds it: they are short.
func (l *Lock) Hold(t testing.TB) {
	t.Helper()
	if err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
}

// Release lets the lock go.
func (l *Lock) Release(t testing.TB) {
	t.Helper()
	if err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
}

// WaitedForBy reports whether a child of process parent is blocked on the lock, as the kernel
// lists it in /proc/locks ("->" marks a waiter). Only children count: other tests on the machine
// may wait for the lock too.
func (l *Lock) WaitedForBy(parent int) (bool, error) {
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(string(data)) {
		// 1: -> FLOCK  ADVISORY  WRITE <pid> <major:minor:inode> 0 EOF
		f := strings.Fields(line)
		if len(f) < 7 || f[1] != "->" || f[2] != "FLOCK" || f[6] != l.id {
			continue
		}
		if pid, err := strconv.Atoi(f[5]); err == nil && parentOf(pid) == parent {
			return true, nil
		}
	}
	return false, nil
}

// parentOf is the parent of process pid; 0 once it is gone.
func parentOf(pid int) int {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			ppid, _ := strconv.Atoi(strings.TrimSpace(v))
			return ppid
		}
	}
	return 0
}

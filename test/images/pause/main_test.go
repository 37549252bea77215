package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/meshinit/meshinit/test/poll"
)

// TestReap: a child that exited stays a zombie until reap collects it.
func TestReap(t *testing.T) {
	pid, err := syscall.ForkExec("/bin/true", []string{"true"}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	stat := filepath.Join("/proc", strconv.Itoa(pid), "stat")
	waitFor(t, fmt.Sprintf("child %d to become a zombie", pid), func() bool {
		data, err := os.ReadFile(stat)
		// The state is the field after the command's closing parenthesis.
		return err == nil && strings.HasPrefix(string(data[strings.LastIndexByte(string(data), ')')+1:]), " Z")
	})
	reap()
	if _, err := os.Stat(stat); err == nil {
		t.Fatalf("child %d was not reaped", pid)
	}
}

// TestExitsOnSignal: SIGTERM and SIGINT end pause with status 0.
func TestExitsOnSignal(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pause")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		// Go's runtime catches the signal from the start, before main asks for it: a signal in
		// between ends the process as the default action would, and nothing outside it tells the
		// two apart. So each signal is tried a few times; pause without its handler would never
		// exit 0, and so fails every try.
		var err error
		for range 5 {
			cmd := exec.Command(bin)
			if err = cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "pause to catch "+sig.String(), func() bool { return catches(cmd.Process.Pid, sig) })
			if err = cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if err = cmd.Wait(); err == nil {
				break
			}
		}
		if err != nil {
			t.Errorf("after %v: %v, want exit status 0", sig, err)
		}
	}
}

// catches reports whether the process has a handler for sig, from SigCgt in /proc/<pid>/status.
func catches(pid int, sig syscall.Signal) bool {
	data, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	for line := range strings.Lines(string(data)) {
		if mask, ok := strings.CutPrefix(line, "SigCgt:"); ok {
			bits, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64)
			return err == nil && bits&(1<<(sig-1)) != 0
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, what, func() (bool, error) { return cond(), nil })
}

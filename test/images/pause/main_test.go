package main

import (
	"bufio"
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
		cmd := exec.Command(bin)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Its handler is in place once it says so.
		line, err := bufio.NewReader(stderr).ReadString('\n')
		if err != nil {
			t.Fatalf("pause's first line: %q, %v", line, err)
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Errorf("after %v: %v, want exit status 0", sig, err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, what, func() (bool, error) { return cond(), nil })
}

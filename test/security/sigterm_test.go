package security

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/poll"
)

// TestSIGTERMWhileReadingStdin: each command that reads a document from stdin, given a stdin that
// never ends (a FIFO or pipe whose writer stays open), stops at SIGTERM with an error that says
// so, rather than ignore it: the programs catch SIGTERM to stop cleanly, so a read that did not
// watch for it would hold them until SIGKILL. The signal is sent once the program is blocked
// reading stdin.
func TestSIGTERMWhileReadingStdin(t *testing.T) {
	for _, tc := range []struct {
		line, want string
	}{
		{"kuma-init --dry-run --config -", "Error: --config: reading stdin: terminated signal received"},
		{"meshinit install transparent-proxy --dry-run --config -", "Error: --config: reading stdin: terminated signal received"},
		{"meshinit inject -f -", "Error: --filename: reading stdin: terminated signal received; accepted: a regular file of YAML or JSON manifests, at most 32 MiB, or - for stdin"},
		{"meshinit install control-plane -f -", "Error: reading stdin: terminated signal received; accepted: a regular file of values, at most 8 MiB, or - for stdin"},
	} {
		t.Run(tc.line, func(t *testing.T) {
			args := strings.Fields(tc.line)
			stdin, writer, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer writer.Close()
			var stderr bytes.Buffer
			cmd := exec.Command(binaries.Build(t, args[0]), args[1:]...)
			cmd.Stdin, cmd.Stderr = stdin, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			stdin.Close()
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			poll.Until(t, tc.line+" reads stdin", func() (bool, error) { return readingStdin(cmd.Process.Pid), nil })
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			err = <-exited
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("after SIGTERM: %v, want an exit with an error status", err)
			}
			if got := strings.TrimSuffix(stderr.String(), "\n"); got != tc.want {
				t.Errorf("stderr\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// readingStdin says whether a thread of process pid is in read(2) on file descriptor 0.
func readingStdin(pid int) bool {
	tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "syscall"))
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		if fields := strings.Fields(string(data)); err == nil && len(fields) > 1 && fields[0] == strconv.Itoa(syscall.SYS_READ) && fields[1] == "0x0" {
			return true
		}
	}
	return false
}

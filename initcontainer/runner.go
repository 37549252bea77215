package initcontainer

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Runner starts commands. Start must start the command from the calling thread, so that it runs in
// that thread's network namespace, and wait returns its stdout. Tests give the Installer a fake
// one; everything else uses ExecRunner.
type Runner interface {
	Start(ctx context.Context, name string, args []string, stdin []byte) (wait func() ([]byte, error), err error)
}

// run starts a command and waits for it.
func run(r Runner, ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	wait, err := r.Start(ctx, name, args, stdin)
	if err != nil {
		return nil, err
	}
	return wait()
}

// CommandError is a command that did not succeed, with what it said.
type CommandError struct {
	Command  string
	ExitCode int
	Stderr   string
}

func (e *CommandError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = "no message"
	}
	return fmt.Sprintf("%s exited with status %d: %s", e.Command, e.ExitCode, msg)
}

// ExecRunner runs commands. It forks from the calling thread, so a thread locked into a pod's
// namespace starts its children there. It uses syscall.ForkExec with in-memory files for stdin
// and the output rather than os/exec, whose first start forks an extra probe child and whose pipes
// need copying goroutines: starting a process is most of what an install costs
// (BenchmarkKumaInitInstall).
type ExecRunner struct{}

func (ExecRunner) Start(ctx context.Context, name string, args []string, stdin []byte) (func() ([]byte, error), error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return nil, err
	}
	in, err := memfile("stdin", stdin)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	out, err := memfile("stdout", nil)
	if err != nil {
		return nil, err
	}
	errOut, err := memfile("stderr", nil)
	if err != nil {
		out.Close()
		return nil, err
	}
	pid, err := syscall.ForkExec(path, append([]string{name}, args...), &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{in.Fd(), out.Fd(), errOut.Fd()},
	})
	if err != nil {
		out.Close()
		errOut.Close()
		return nil, fmt.Errorf("running %s: %w", name, err)
	}
	stop := context.AfterFunc(ctx, func() { syscall.Kill(pid, syscall.SIGKILL) })
	return func() ([]byte, error) {
		defer stop()
		defer out.Close()
		defer errOut.Close()
		var status syscall.WaitStatus
		for {
			_, err := syscall.Wait4(pid, &status, 0, nil)
			if err != syscall.EINTR {
				if err != nil {
					return nil, fmt.Errorf("waiting for %s: %w", name, err)
				}
				break
			}
		}
		stdout, err := readAll(out)
		if err != nil {
			return nil, err
		}
		if !status.Exited() || status.ExitStatus() != 0 {
			stderr, _ := readAll(errOut)
			code := status.ExitStatus()
			if status.Signaled() {
				code = 128 + int(status.Signal())
			}
			return stdout, &CommandError{Command: name, ExitCode: code, Stderr: string(stderr)}
		}
		return stdout, nil
	}, nil
}

// memfile is an anonymous in-memory file holding data, positioned at its start.
func memfile(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if len(data) > 0 {
		if _, err := f.Write(data); err != nil {
			f.Close()
			return nil, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

func readAll(f *os.File) ([]byte, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

package node

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// daemon is one long-running part of the node, in a process group of its own.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

// env is the parts' environment: bin/ first (containerd finds its shim there), the system's tools
// (runc, mount, nsenter), and temporary files in the node's root.
func (n *Node) env() []string {
	return []string{
		"PATH=" + n.bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"TMPDIR=" + filepath.Join(n.Root, "tmp"),
		"HOME=" + filepath.Join(n.Root, "tmp"),
	}
}

// run starts name from bin/ with args, its output appended to logs/<name>.log in the root.
func (n *Node) run(name string, args ...string) (*daemon, error) {
	d := &daemon{name: name, log: filepath.Join(n.Root, "logs", name+".log"), exited: make(chan struct{})}
	f, err := os.OpenFile(d.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	d.cmd = exec.Command(filepath.Join(n.bin, name), args...)
	d.cmd.Env = n.env()
	d.cmd.Dir = n.Root
	d.cmd.Stdout, d.cmd.Stderr = f, f
	// Its own process group: stopping it reaches its children and no one else. A test killed
	// (Ctrl-C, go test's timeout) leaves the node running; the next node, or TestRecover, stops it.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		f.Close()
		close(d.exited)
	}()
	n.mu.Lock()
	n.daemons[name] = d
	n.mu.Unlock()
	return d, nil
}

func (n *Node) daemon(name string) *daemon {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.daemons[name]
}

// stop sends SIGTERM to the daemon's process group, and SIGKILL after grace; it returns once the
// daemon has exited.
func (d *daemon) stop(grace time.Duration) {
	select {
	case <-d.exited:
		return
	default:
	}
	_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
}

// exitedErr says how the daemon ended, with the end of its log.
func (d *daemon) exitedErr() error {
	return fmt.Errorf("%s exited: %v\n%s", d.name, d.err, tail(d.log, 40))
}

// tail returns the last lines of a file.
func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// DumpLogs hands the end of each part's log to logf (a failing test's t.Logf).
func (n *Node) DumpLogs(logf func(string, ...any)) {
	if n.Root == "" {
		return
	}
	for _, name := range []string{"containerd", "kubelet", "kube-controller-manager", "kube-scheduler", "kube-apiserver"} {
		path := filepath.Join(n.Root, "logs", name+".log")
		if _, err := os.Stat(path); err == nil {
			logf("node: the end of %s's log:\n%s", name, tail(path, 60))
		}
	}
}

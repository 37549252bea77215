package initcontainer

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// command is one command to run.
type command struct {
	name  string
	args  []string
	stdin []byte
}

// runAll runs the commands at once, each from its own thread in the calling thread's network
// namespace, and then, on that thread, runs then(i) once command i has succeeded. It reports which
// commands succeeded, and each one's error: the command's, or then's.
//
// Starting processes one after another from one thread would run them one after another: the
// vfork that starts a process suspends the parent until the child execs, and the scheduler often
// keeps the parent waiting on while the child runs (BenchmarkKumaInitInstall). The runtime clones threads from wherever it
// likes, possibly in another namespace than the caller's (the CNI plugin calls from a thread locked
// into the pod's), so each thread joins the caller's namespace first when it is not already in it.
func runAll(ctx context.Context, r Runner, cmds []command, then func(i int) error) (succeeded []bool, errs []error) {
	succeeded, errs = make([]bool, len(cmds)), make([]error, len(cmds))
	runOne := func(i int) {
		wait, err := r.Start(ctx, cmds[i].name, cmds[i].args, cmds[i].stdin)
		if err == nil {
			_, err = wait()
		}
		if err != nil {
			errs[i] = err
			return
		}
		succeeded[i] = true
		errs[i] = then(i)
	}
	if len(cmds) == 1 {
		runOne(0)
		return succeeded, errs
	}
	ns, err := os.Open("/proc/thread-self/ns/net")
	if err == nil {
		defer ns.Close()
	}
	want, statErr := uint64(0), err
	if err == nil {
		want, statErr = netnsInode(ns)
	}
	var wg sync.WaitGroup
	for i := range cmds {
		if statErr != nil {
			errs[i] = statErr
			continue
		}
		wg.Go(func() {
			runtime.LockOSThread()
			joined, err := joinNetns(ns, want)
			if !joined {
				defer runtime.UnlockOSThread() // untouched: the runtime may reuse it
			}
			if err != nil {
				errs[i] = err
				return
			}
			runOne(i)
		})
	}
	wg.Wait()
	return succeeded, errs
}

func netnsInode(f *os.File) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, fmt.Errorf("reading the network namespace: %w", err)
	}
	return st.Ino, nil
}

// joinNetns moves the calling (locked) thread into the namespace ns unless it is there, and
// reports whether it moved it.
func joinNetns(ns *os.File, want uint64) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return false, fmt.Errorf("reading the network namespace: %w", err)
	}
	if st.Ino == want {
		return false, nil
	}
	if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
		return true, fmt.Errorf("joining the network namespace: %w", err)
	}
	return true, nil
}

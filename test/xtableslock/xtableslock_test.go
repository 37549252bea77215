package xtableslock

import (
	"os"
	"os/exec"
	"testing"

	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/prereq"
)

// TestWaitedForBy blocks util-linux's flock, a child of this test, on the held lock.
func TestWaitedForBy(t *testing.T) {
	prereq.Root(t)
	flock := prereq.Binary(t, "flock")
	l := Open(t)
	l.Hold(t)
	if waited, err := l.WaitedForBy(os.Getpid()); waited || err != nil {
		t.Fatalf("WaitedForBy = %v, %v before any child waits", waited, err)
	}
	cmd := exec.Command(flock, Path, "true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "flock waits for the lock", func() (bool, error) { return l.WaitedForBy(os.Getpid()) })
	if waited, err := l.WaitedForBy(cmd.Process.Pid); waited || err != nil {
		t.Errorf("WaitedForBy(flock's pid) = %v, %v: flock has no child waiting", waited, err)
	}
	l.Release(t)
	if err := cmd.Wait(); err != nil {
		t.Errorf("flock, once the lock was released: %v", err)
	}
	if waited, err := l.WaitedForBy(os.Getpid()); waited || err != nil {
		t.Errorf("WaitedForBy = %v, %v once flock is done", waited, err)
	}
}

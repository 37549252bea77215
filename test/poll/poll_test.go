package poll

import (
	"context"
	"errors"
	"runtime"
	"syscall"
	"testing"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	calls := 0
	Until(t, "the third call", func() (bool, error) { calls++; return calls == 3, nil })
	if calls != 3 {
		t.Errorf("cond was called %d times, want 3", calls)
	}
}

func TestWaitStopsAtTheConditionsError(t *testing.T) {
	broken := errors.New("broken")
	calls := 0
	if err := Wait(t.Context(), func() (bool, error) { calls++; return false, broken }); err != broken || calls != 1 {
		t.Errorf("Wait = %v after %d calls, want cond's error after one", err, calls)
	}
}

func TestWaitStopsWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	calls := 0
	err := Wait(ctx, func() (bool, error) {
		if calls++; calls == 2 {
			cancel()
		}
		return false, nil
	})
	if !errors.Is(err, context.Canceled) || calls != 2 {
		t.Errorf("Wait = %v after %d calls, want context.Canceled after two", err, calls)
	}
}

// TestWaitCallsOnTheCallingThread: netkit polls from a thread locked into a network namespace.
func TestWaitCallsOnTheCallingThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tid, calls := syscall.Gettid(), 0
	Until(t, "three calls", func() (bool, error) {
		if got := syscall.Gettid(); got != tid {
			t.Fatalf("cond ran on thread %d, the caller is %d", got, tid)
		}
		calls++
		return calls == 3, nil
	})
}

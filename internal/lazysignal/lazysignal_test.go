package lazysignal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The child modes run in a copy of the test binary, as a signal's effect is the whole process's.
func TestMain(m *testing.M) {
	switch os.Getenv("LAZYSIGNAL_CHILD") {
	case "":
		os.Exit(m.Run())
	case "idle": // never waits: a SIGTERM has the runtime's default effect
		New(syscall.SIGTERM)
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		<-time.After(10 * time.Second) // a bound only: the signal ends the process long before
		os.Exit(4)
	case "waiting": // waits: the SIGTERM ends the context instead
		ctx := New(syscall.SIGTERM)
		done := ctx.Done()
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		<-done
		if !errors.Is(ctx.Err(), context.Canceled) {
			os.Exit(3)
		}
		os.Exit(0)
	}
}

func child(t *testing.T, mode string) error {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "LAZYSIGNAL_CHILD="+mode)
	return cmd.Run()
}

func TestUnwaitedContextLeavesSignalsAlone(t *testing.T) {
	err := child(t, "idle")
	ee, ok := errors.AsType[*exec.ExitError](err)
	if !ok {
		t.Fatalf("the child was not ended by its SIGTERM: %v", err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("the child ended with %v, not the runtime's death by SIGTERM", ws)
	}
}

func TestWaitedContextEndsOnSignal(t *testing.T) {
	if err := child(t, "waiting"); err != nil {
		t.Fatalf("the child's context did not end on its SIGTERM: %v", err)
	}
}

func TestErrWithoutWaitingAndStop(t *testing.T) {
	ctx := New(syscall.SIGTERM)
	if err := ctx.Err(); err != nil {
		t.Fatalf("Err before anything waited: %v", err)
	}
	ctx.Stop()
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done is open after Stop")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err after Stop: %v", ctx.Err())
	}
}

func TestDerivedContextsEnd(t *testing.T) {
	ctx := New(syscall.SIGTERM)
	derived, cancel := context.WithCancel(ctx)
	defer cancel()
	ctx.Stop()
	<-derived.Done()
}

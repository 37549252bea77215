// Package poll is how tests wait for something to happen: they ask again and again until it has,
// never sleep a fixed time. A test that checks that something did not happen first waits, with it,
// for a positive sign that it would have by then (a pass of the installer, a later object handled,
// a process blocked on a lock).
//
// It imports nothing of this module, so that every test and test kit can use it.
package poll

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Timeout bounds every wait. It is generous: tests share two busy cores with other tests, and
// they check that things happen, not how fast; benchmarks and logged figures measure that.
const Timeout = time.Minute

// Between two calls, the condition rests four times as long as its last call took, within these
// bounds: a cheap one (a file, a local endpoint) is asked every millisecond, so that tests that
// time what they wait for stay precise, and calls to a busy API server take at most a fifth of a
// core.
const (
	minPause = time.Millisecond
	maxPause = 50 * time.Millisecond
)

// Until calls cond until it returns true, and fails the test, saying it was waiting until what,
// if cond returns an error, Timeout passes or the test's context ends first. Like t.Fatal, it is
// for the test's goroutine.
func Until(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	if err := Wait(t.Context(), cond); err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// Wait calls cond until it returns true, and then returns nil; it returns cond's error, or an
// error once ctx ends or Timeout passes, whichever comes first. It calls cond on the calling
// goroutine, so that a thread locked into a network namespace stays there.
func Wait(ctx context.Context, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeoutCause(ctx, Timeout, fmt.Errorf("not within %v", Timeout))
	defer cancel()
	for {
		start := time.Now()
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(min(max(4*time.Since(start), minPause), maxPause)):
		}
	}
}

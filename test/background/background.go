// Package background runs a long-lived part (a controller manager, install-cni's loop) for the
// length of a test, and stops it when the test ends.
package background

import (
	"context"
	"testing"
)

// Run starts run in a goroutine with a context that is cancelled when the test ends; cleanup then
// waits for it to return and fails the test with its error, naming it as what.
func Run(t testing.TB, what string, run func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", what, err)
		}
	})
}

package initcontainer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// lockName is an abstract unix socket name. Abstract names belong to a network namespace and
// vanish with the process holding them, so binding one serialises installs into the same
// namespace, never across namespaces, needs no writable filesystem (kuma-init's is read-only),
// and cannot be left stale by a crash.
const lockName = "@meshinit/transparent-proxy"

// lockNamespace takes the calling thread's namespace's lock, waiting up to wait. Reading the
// rules, computing the change and applying it must not interleave with another install, or both
// would insert their jumps.
func lockNamespace(ctx context.Context, wait time.Duration) (unlock func(), err error) {
	deadline := time.Now().Add(wait)
	for {
		l, err := net.Listen("unix", lockName)
		if err == nil {
			return func() { l.Close() }, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("taking the install lock: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("another install into this network namespace still holds the lock after %v", wait)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

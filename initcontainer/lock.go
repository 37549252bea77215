package initcontainer

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
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
		fd, err := bindAbstract(lockName[1:])
		if err == nil {
			return func() { unix.Close(fd) }, nil
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

// bindAbstract binds a plain socket to an abstract name; a raw socket, not a net.Listener, keeps
// the runtime's poller out of what is only a lock.
func bindAbstract(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: "@" + name}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

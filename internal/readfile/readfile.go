// Package readfile reads the files users name, bounded: a FIFO, a device or a huge file named by
// mistake fails at once rather than hang the program or feed it forever.
package readfile

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
)

// Regular reads the regular file at path, of at most limit bytes. It opens without blocking, so
// that opening a FIFO returns at once and is then refused. It reads with plain system calls: an
// os.File would start the runtime's poller on its first open (an epoll instance, an eventfd,
// registrations), which kuma-init, reading only a resolv.conf and a few /proc files, has no use
// for.
func Regular(path string, limit int64) ([]byte, error) {
	fd, err := ignoringEINTR(func() (int, error) {
		return syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if uint32(st.Mode)&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	// /proc's files say size 0: start small, and grow as io.ReadAll would.
	data := make([]byte, 0, min(limit+1, max(st.Size+1, 512)))
	for int64(len(data)) <= limit {
		if len(data) == cap(data) {
			data = slices.Grow(data, int(min(limit+1, int64(cap(data))*2))-len(data))
		}
		n, err := ignoringEINTR(func() (int, error) { return syscall.Read(fd, data[len(data):min(int64(cap(data)), limit+1)]) })
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return data, nil
		}
		data = data[:len(data)+n]
	}
	return nil, fmt.Errorf("%s is over %d bytes", path, limit)
}

// ignoringEINTR retries a system call a signal interrupted.
func ignoringEINTR(call func() (int, error)) (int, error) {
	for {
		n, err := call()
		if err != syscall.EINTR {
			return n, err
		}
	}
}

// Limited reads r, named name in errors, to its end, refusing more than limit bytes.
func Limited(r io.Reader, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(data)) > limit {
		err = fmt.Errorf("%s is over %d bytes", name, limit)
	}
	return data, err
}

// Context reads r to its end as Limited does, or gives up when ctx ends (a SIGTERM, say): a
// stdin that never ends must not hold a program that was asked to stop. The read goes on in the
// background until r ends or the program exits.
func Context(ctx context.Context, r io.Reader, name string, limit int64) ([]byte, error) {
	type result struct {
		data []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		data, err := Limited(r, name, limit)
		done <- result{data, err}
	}()
	select {
	case r := <-done:
		return r.data, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("reading %s: %w", name, context.Cause(ctx))
	}
}

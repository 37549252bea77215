// Package readfile reads the files users name, bounded: a FIFO, a device or a huge file named by
// mistake fails at once rather than hang the program or feed it forever.
package readfile

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
)

// Regular reads the regular file at path, of at most limit bytes. It opens without blocking, so
// that opening a FIFO returns at once and is then refused.
func Regular(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return Limited(f, path, limit)
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

// Package readfile reads the files users name, bounded: a FIFO, a device or a huge file named by
// mistake fails at once rather than hang the program or feed it forever.
package readfile

import (
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

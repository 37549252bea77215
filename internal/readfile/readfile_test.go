package readfile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestRegular(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if data, err := Regular(file, 5); err != nil || string(data) != "12345" {
		t.Errorf("a file at the limit: %q, %v", data, err)
	}
	for _, tc := range []struct {
		path  string
		limit int64
		want  string
	}{
		{file, 4, file + " is over 4 bytes"},
		// No writer ever opens the FIFO: a blocking open would wait for one forever.
		{fifo, 5, fifo + " is not a regular file"},
		{dir, 5, dir + " is not a regular file"},
		{filepath.Join(dir, "missing"), 5, "no such file or directory"},
	} {
		if _, err := Regular(tc.path, tc.limit); err == nil || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("Regular(%s, %d) = %v, want an error ending %q", tc.path, tc.limit, err, tc.want)
		}
	}
}

// TestRegularProc: /proc's files say size 0 and are longer than the first read's guess.
func TestRegularProc(t *testing.T) {
	want, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) <= 512 {
		t.Fatalf("/proc/cpuinfo has %d bytes, not enough to need a second read", len(want))
	}
	got, err := Regular("/proc/cpuinfo", 1<<20)
	if err != nil || string(got) != string(want) {
		t.Errorf("Regular(/proc/cpuinfo) = %d bytes, %v; os.ReadFile read %d", len(got), err, len(want))
	}
	if _, err := Regular("/proc/cpuinfo", 600); err == nil || !strings.HasSuffix(err.Error(), "is over 600 bytes") {
		t.Errorf("a /proc file over the limit: %v", err)
	}
}

// TestContext: a read of a reader that never ends gives up when the context ends, with its cause.
func TestContext(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("terminated"))
	if _, err := Context(ctx, r, "stdin", 5); err == nil || err.Error() != "reading stdin: terminated" {
		t.Errorf("error = %v", err)
	}
	if data, err := Context(t.Context(), strings.NewReader("123456"), "stdin", 5); err == nil || err.Error() != "stdin is over 5 bytes" {
		t.Errorf("over the limit: %q, %v", data, err)
	}
}

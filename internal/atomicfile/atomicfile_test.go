package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name     string
		existing fs.FileMode // 0: no file there
		opts     []Option
		want     fs.FileMode
	}{
		{name: "new", want: 0o640},
		{name: "over another mode", existing: 0o600, want: 0o640},
		{name: "new, KeepMode", opts: []Option{KeepMode()}, want: 0o640},
		{name: "over another mode, KeepMode", existing: 0o600, opts: []Option{KeepMode()}, want: 0o600},
		{name: "TempDir", existing: 0o600, opts: []Option{TempDir(".tmp")}, want: 0o640},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "file")
			if tc.existing != 0 {
				if err := os.WriteFile(path, []byte("old"), tc.existing); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tc.existing); err != nil {
					t.Fatal(err)
				}
			}
			written, err := Write(path, strings.NewReader("new"), 0o640, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if data, _ := os.ReadFile(path); string(data) != "new" || fi.Mode().Perm() != tc.want || !os.SameFile(fi, written) {
				t.Errorf("%s: %q, mode %v, want %q, mode %v, the file written", path, data, fi.Mode().Perm(), "new", tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%s holds %v, want only the file: the temporary directory stays", dir, entries)
			}
		})
	}
}

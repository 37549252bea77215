// Package atomicfile replaces files that other programs read while they change (the container
// runtime its network configuration and plugins, firewalld its direct rules), so that a reader
// sees the old file or the new one, never a part of one.
package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Option changes how Write writes.
type Option func(*options)

type options struct {
	keepMode bool
	tempDir  string
}

// KeepMode keeps the mode of the file Write replaces, for files that are someone else's; perm is
// then only a new file's mode.
func KeepMode() Option { return func(o *options) { o.keepMode = true } }

// TempDir writes the temporary file in a hidden directory of that name beside the file, made for
// the write and removed after when empty, instead of where renameio picks (os.TempDir or the
// file's directory): on the same file system, so that the rename is atomic, and apart from
// everyone else's files, so that what a writer killed mid-write leaves behind can be removed
// without telling it from another program's temporary file.
func TempDir(name string) Option { return func(o *options) { o.tempDir = name } }

// Write replaces path with what r holds, through a temporary file renamed into place, and returns
// the file as written, taken before the rename: a change made right after the rename is not the
// writer's own. The file gets mode perm exactly, also over a file of another mode (unless
// KeepMode): renameio.WriteFile keeps the replaced file's mode, so a file of ours that someone
// chmodded would be written again on every pass and never get its mode back.
func Write(path string, r io.Reader, perm fs.FileMode, opts ...Option) (fs.FileInfo, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	ropts := []renameio.Option{renameio.WithPermissions(perm), renameio.WithStaticPermissions(perm)}
	if o.keepMode {
		ropts = append(ropts, renameio.WithExistingPermissions())
	}
	if o.tempDir != "" {
		dir := filepath.Join(filepath.Dir(path), o.tempDir)
		if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		// Another writer may still be using it: removed only once empty.
		defer func() { _ = os.Remove(dir) }()
		ropts = append(ropts, renameio.WithTempDir(dir))
	}
	f, err := renameio.NewPendingFile(path, ropts...)
	if err != nil {
		return nil, err
	}
	defer f.Cleanup()
	if _, err := io.Copy(f, r); err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return fi, f.CloseAtomicallyReplace()
}

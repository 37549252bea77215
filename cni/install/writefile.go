package install

import (
	"io/fs"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// writeFile replaces path with data atomically, through a temporary file in the same directory,
// and gives it mode perm. Not renameio.WriteFile: it keeps the mode of the file it replaces, so a
// file someone chmodded would be written again on every pass and never get its mode back.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(filepath.Dir(path)), renameio.WithStaticPermissions(perm))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

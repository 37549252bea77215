package install

import (
	"io/fs"

	"github.com/google/renameio/v2"

	"github.com/meshinit/meshinit/cni/conflist"
)

// writeFile replaces path with data atomically, through a temporary file in conflist.TempDir,
// and gives it mode perm. Not renameio.WriteFile: it keeps the mode of the file it replaces, so a
// file someone chmodded would be written again on every pass and never get its mode back.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	tmp, done, err := conflist.MakeTempDir(path)
	if err != nil {
		return err
	}
	defer done()
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(tmp), renameio.WithStaticPermissions(perm))
	if err != nil {
		return err
	}
	defer f.Cleanup()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.CloseAtomicallyReplace()
}

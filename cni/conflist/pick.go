package conflist

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// extensions are the file name extensions runtimes load network configurations from.
var extensions = []string{".conf", ".conflist", ".json"}

// Pick returns the name of the network configuration file in dir that kuma-cni belongs in, or ""
// when there is none yet. With confName set (CNI_CONF_NAME) it is that file, or the .conflist
// InsertFile made of it. Otherwise it is the file the runtime uses: the first in name order with a
// configuration extension. Hidden files are skipped: they are atomic writers' temporary files.
func Pick(dir, confName string) (string, error) {
	if confName != "" {
		switch err := exists(filepath.Join(dir, confName)); {
		case err == nil:
			return confName, nil
		case !errors.Is(err, fs.ErrNotExist):
			return "", err
		}
		if filepath.Ext(confName) != ".conflist" &&
			exists(filepath.Join(dir, ConflistName(confName))) == nil &&
			exists(filepath.Join(dir, OriginalName(confName))) == nil {
			return ConflistName(confName), nil
		}
		return "", nil
	}
	files, err := Files(dir)
	if err != nil || len(files) == 0 {
		return "", err
	}
	return files[0], nil
}

// Files lists the network configuration files in dir in the order runtimes try them: by name.
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		if isConfig(e) {
			files = append(files, e.Name())
		}
	}
	return files, nil
}

func isConfig(e fs.DirEntry) bool {
	return !e.IsDir() && !strings.HasPrefix(e.Name(), ".") && slices.Contains(extensions, filepath.Ext(e.Name()))
}

func exists(path string) error {
	_, err := os.Stat(path)
	return err
}

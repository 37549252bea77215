package conflist

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/internal/atomicfile"
)

// Result says what InsertFile did.
type Result struct {
	// File is the path that holds kuma-cni's entry.
	File string
	// Written is false when the file held the entry already, byte for byte.
	Written bool
	// KeptAside is where a converted .conf or .json was moved to; "" when there was none.
	KeptAside string
}

// InsertFile puts entry into the network configuration file name in dir (see Insert), writing
// atomically and keeping the file's mode. Nothing is written when nothing would change, so that
// the installer's own writes, seen again by its watch, are no-ops.
func InsertFile(dir, name string, entry cni.NetConf, opts ...Option) (Result, error) {
	path := filepath.Join(dir, name)
	data, mode, err := read(path)
	if err != nil {
		return Result{}, err
	}
	out, newPath, err := Insert(path, data, entry, opts...)
	if err != nil {
		return Result{}, err
	}
	res := Result{File: newPath}
	if newPath == path {
		if bytes.Equal(out, data) {
			return res, nil
		}
		res.Written = true
		return res, write(path, out, mode)
	}
	// A .conf: the list is written first and the .conf moved aside after, so that the runtime
	// always finds a configuration (it sorts 10-x.conf before 10-x.conflist).
	switch old, _, err := read(newPath); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return Result{}, err
	case !HasEntry(old):
		return Result{}, &Error{File: newPath, Problem: fmt.Sprintf(
			"exists and kuma-cni did not write it, so %s is not converted into it; accepted: only one of the two files", filepath.Base(path))}
	}
	if err := write(newPath, out, mode); err != nil {
		return Result{}, err
	}
	if err := os.Rename(path, OriginalName(path)); err != nil {
		return Result{}, err
	}
	return Result{File: newPath, Written: true, KeptAside: OriginalName(path)}, nil
}

// Change is one file RemoveFiles changed, for the log.
type Change struct {
	// What was done: "restored", "deleted" or "removed kuma-cni from".
	What string
	File string
}

// RemoveFiles takes kuma-cni out of every network configuration in dir: a converted .conf gets its
// original back, byte for byte, and the list made of it is deleted; every other conflist loses
// kuma-cni's entry. It goes on past errors, and returns them all.
func RemoveFiles(dir string) ([]Change, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var changes []Change
	var errs []error
	done := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), originalSuffix) {
			continue
		}
		aside := filepath.Join(dir, e.Name())
		orig := strings.TrimSuffix(aside, originalSuffix)
		list := ConflistName(orig)
		done[list] = true
		// The .conf first, then the list goes: the runtime always finds a configuration.
		if exists(orig) == nil {
			// The provider wrote the .conf again since it was converted: its new one stays.
			changes = appendChange(changes, &errs, os.Remove(aside), "deleted", aside)
		} else {
			changes = appendChange(changes, &errs, os.Rename(aside, orig), "restored", orig)
		}
		if data, _, err := read(list); err == nil && HasEntry(data) {
			changes = appendChange(changes, &errs, os.Remove(list), "deleted", list)
		}
	}
	for _, e := range entries {
		path := filepath.Join(dir, e.Name())
		if !isConfig(e) || filepath.Ext(path) != ".conflist" || done[path] {
			continue
		}
		data, mode, err := read(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !HasEntry(data) {
			continue
		}
		out, err := Remove(path, data)
		if err == nil {
			err = write(path, out, mode)
		}
		changes = appendChange(changes, &errs, err, "removed kuma-cni from", path)
	}
	return changes, errors.Join(errs...)
}

func appendChange(changes []Change, errs *[]error, err error, what, file string) []Change {
	if err != nil {
		*errs = append(*errs, err)
		return changes
	}
	return append(changes, Change{What: what, File: file})
}

func read(path string) ([]byte, fs.FileMode, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	data, err := os.ReadFile(path)
	return data, fi.Mode().Perm(), err
}

// write replaces path atomically, as providers do, keeping the mode of a file it replaces.
func write(path string, data []byte, mode fs.FileMode) error {
	_, err := atomicfile.Write(path, bytes.NewReader(data), mode, atomicfile.KeepMode(), atomicfile.TempDir(TempDir))
	return err
}

// TempDir is the hidden directory (see atomicfile.TempDir), beside each file kuma-cni's installer
// writes, where the file is written before it is renamed into place.
const TempDir = ".kuma-cni-tmp"

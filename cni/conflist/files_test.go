package conflist

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/meshinit/meshinit/cni/install/testnode"
)

// setup copies testdata files into a fresh directory, with the given mode.
func setup(t *testing.T, mode os.FileMode, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// listing is the directory's file names and contents.
func listing(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

func TestInsertFileConflist(t *testing.T) {
	dir := setup(t, 0o640, "10-calico.conflist")
	before := listing(t, dir)
	path := filepath.Join(dir, "10-calico.conflist")

	res, err := InsertFile(dir, "10-calico.conflist", testEntry)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{File: path, Written: true}); res != want {
		t.Errorf("InsertFile = %+v, want %+v", res, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want the file's own 0640", fi.Mode().Perm())
	}
	if res, err := InsertFile(dir, "10-calico.conflist", testEntry); err != nil || res.Written {
		t.Errorf("inserting again: %+v, %v; want nothing written", res, err)
	}

	changes, err := RemoveFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Change{{"removed kuma-cni from", path}}; !reflect.DeepEqual(changes, want) {
		t.Errorf("changes %v, want %v", changes, want)
	}
	if after := listing(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("after remove the directory holds %v, want %v", after, before)
	}
}

func TestInsertFileConvertsConf(t *testing.T) {
	dir := setup(t, 0o644, "10-calico.conf")
	before := listing(t, dir)
	conf := filepath.Join(dir, "10-calico.conf")
	list := filepath.Join(dir, "10-calico.conflist")

	res, err := InsertFile(dir, "10-calico.conf", testEntry)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Result{File: list, Written: true, KeptAside: conf + ".kuma-cni-original"}); res != want {
		t.Errorf("InsertFile = %+v, want %+v", res, want)
	}
	got := listing(t, dir)
	if want := []string{"10-calico.conf.kuma-cni-original", "10-calico.conflist"}; !reflect.DeepEqual(keys(got), want) {
		t.Errorf("files %v, want %v", keys(got), want)
	}
	if got["10-calico.conf.kuma-cni-original"] != before["10-calico.conf"] {
		t.Error("the original kept aside is not the .conf byte for byte")
	}
	loadWithLibcni(t, "10-calico.conflist", []byte(got["10-calico.conflist"]))

	// Installed, the .conflist is the file: inserting again writes nothing.
	name, err := Pick(dir, "10-calico.conf")
	if err != nil || name != "10-calico.conflist" {
		t.Fatalf("Pick = %q, %v", name, err)
	}
	if res, err := InsertFile(dir, name, testEntry); err != nil || res.Written {
		t.Errorf("inserting again: %+v, %v", res, err)
	}

	changes, err := RemoveFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Change{{"restored", conf}, {"deleted", list}}; !reflect.DeepEqual(changes, want) {
		t.Errorf("changes %v, want %v", changes, want)
	}
	if after := listing(t, dir); !reflect.DeepEqual(after, before) {
		t.Errorf("after remove the directory holds %v, want %v", after, before)
	}
}

func TestInsertFileConfWrittenAgain(t *testing.T) {
	dir := setup(t, 0o644, "10-calico.conf")
	conf := filepath.Join(dir, "10-calico.conf")
	if _, err := InsertFile(dir, "10-calico.conf", testEntry); err != nil {
		t.Fatal(err)
	}
	// The provider writes its .conf again, with a new MTU: it is converted again, and the new one
	// is what remove gives back.
	newer := bytes.Replace(testnode.ReadFile(t, filepath.Join("testdata", "10-calico.conf")), []byte("1440"), []byte("1450"), 1)
	if err := os.WriteFile(conf, newer, 0o644); err != nil {
		t.Fatal(err)
	}
	if name, _ := Pick(dir, ""); name != "10-calico.conf" {
		t.Fatalf("Pick = %q, want the .conf, which runtimes now load", name)
	}
	res, err := InsertFile(dir, "10-calico.conf", testEntry)
	if err != nil || !res.Written {
		t.Fatalf("InsertFile = %+v, %v", res, err)
	}
	if !bytes.Contains(testnode.ReadFile(t, res.File), []byte("1450")) {
		t.Error("the list is not made of the new .conf")
	}
	if _, err := RemoveFiles(dir); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"10-calico.conf": string(newer)}; !reflect.DeepEqual(listing(t, dir), want) {
		t.Errorf("after remove: %v", keys(listing(t, dir)))
	}

	// Had the installer stopped before converting it again, the new .conf stays and the old
	// original goes.
	if _, err := InsertFile(dir, "10-calico.conf", testEntry); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, newer, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveFiles(dir); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"10-calico.conf": string(newer)}; !reflect.DeepEqual(listing(t, dir), want) {
		t.Errorf("after remove: %v", keys(listing(t, dir)))
	}
}

func TestInsertFileKeepsForeignConflist(t *testing.T) {
	dir := setup(t, 0o644, "10-calico.conf")
	foreign := []byte(`{"name": "other", "plugins": [{"type": "bridge"}]}`)
	if err := os.WriteFile(filepath.Join(dir, "10-calico.conflist"), foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	before := listing(t, dir)
	_, err := InsertFile(dir, "10-calico.conf", testEntry)
	var fe *Error
	if !errors.As(err, &fe) || fe.File != filepath.Join(dir, "10-calico.conflist") {
		t.Fatalf("got %v, want an *Error on the .conflist", err)
	}
	if after := listing(t, dir); !reflect.DeepEqual(after, before) {
		t.Error("a refused conversion changed files")
	}
}

func TestInsertFileLeavesBrokenFileAlone(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "10-x.conflist")
	broken := []byte(`{"cniVersion": "0.3.1", "name": "x", "plugins": [{"type": "a"}, {"type": "b", "cniVersion": "1.0.0"}]}`)
	if err := os.WriteFile(path, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := InsertFile(dir, "10-x.conflist", testEntry); err == nil {
		t.Fatal("InsertFile accepted a list that mixes versions")
	}
	if !bytes.Equal(testnode.ReadFile(t, path), broken) {
		t.Error("the refused file changed")
	}
	if changes, err := RemoveFiles(dir); err != nil || len(changes) != 0 {
		t.Errorf("RemoveFiles = %v, %v; want nothing done", changes, err)
	}
}

func TestRemoveFilesEveryList(t *testing.T) {
	dir := setup(t, 0o644, "05-cilium.conflist", "10-calico.conflist")
	before := listing(t, dir)
	for _, name := range []string{"10-calico.conflist", "05-cilium.conflist"} {
		if _, err := InsertFile(dir, name, testEntry); err != nil {
			t.Fatal(err)
		}
	}
	changes, err := RemoveFiles(dir)
	if err != nil || len(changes) != 2 {
		t.Errorf("RemoveFiles = %v, %v", changes, err)
	}
	if after := listing(t, dir); !reflect.DeepEqual(after, before) {
		t.Error("the lists are not as they were")
	}
}

func keys(m map[string]string) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	slices.Sort(k)
	return k
}

package conflist

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPick(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    []string
		confName string
		want     string
	}{
		{name: "empty directory"},
		{name: "nothing loadable", files: []string{"kuma-cni-kubeconfig", "calico-kubeconfig", "README.txt", "10-calico.conf.kuma-cni-original"}},
		{name: "first in name order", files: []string{"10-calico.conflist", "05-cilium.conflist", "99-loopback.conf"}, want: "05-cilium.conflist"},
		{name: ".conf sorts before its .conflist", files: []string{"10-calico.conflist", "10-calico.conf"}, want: "10-calico.conf"},
		{name: ".json counts", files: []string{"20-b.conflist", "15-a.json"}, want: "15-a.json"},
		{name: "temporary files and directories skipped",
			files: []string{".05-cilium.conflist123", "00-multus.d/", ".00-hidden.conflist", "10-flannel.conflist"}, want: "10-flannel.conflist"},
		{name: "named", files: []string{"05-cilium.conflist", "10-calico.conflist"}, confName: "10-calico.conflist", want: "10-calico.conflist"},
		{name: "named but not there yet", files: []string{"05-cilium.conflist"}, confName: "10-calico.conflist"},
		{name: "named .conf, converted", files: []string{"10-calico.conflist", "10-calico.conf.kuma-cni-original"},
			confName: "10-calico.conf", want: "10-calico.conflist"},
		{name: "named .conf, written again by its provider", files: []string{"10-calico.conf", "10-calico.conflist", "10-calico.conf.kuma-cni-original"},
			confName: "10-calico.conf", want: "10-calico.conf"},
		{name: "named .conf, someone else's .conflist", files: []string{"10-calico.conflist"}, confName: "10-calico.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				path := filepath.Join(dir, f)
				var err error
				if f[len(f)-1] == '/' {
					err = os.Mkdir(path, 0o755)
				} else {
					err = os.WriteFile(path, []byte("{}"), 0o644)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := Pick(dir, tc.confName)
			if err != nil || got != tc.want {
				t.Errorf("Pick = %q, %v; want %q", got, err, tc.want)
			}
			if files, err := Files(dir); err != nil || (tc.confName == "" && tc.want != "" && files[0] != tc.want) {
				t.Errorf("Files = %q, %v", files, err)
			}
		})
	}
}

func TestPickMissingDirectory(t *testing.T) {
	if _, err := Pick(filepath.Join(t.TempDir(), "nope"), ""); err == nil {
		t.Error("Pick of a missing directory gave no error")
	}
}

package node

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/distribution/reference"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PauseImage is the name of the node's sandbox image, under which it is imported. Its registry
// does not exist: nothing is ever pulled.
const PauseImage = "meshinit.test/pause:node"

// ImportImage imports an image into containerd's k8s.io namespace, where the kubelet finds it (use
// imagePullPolicy: Never or IfNotPresent): an OCI image layout directory, such as bin/images/<name>,
// or a tar of one or a docker-archive (`docker save`). A layout directory is imported as ref; a tar
// keeps the names it holds, and ref must be empty.
func (n *Node) ImportImage(ctx context.Context, path, ref string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		if ref != "" {
			return fmt.Errorf("importing %s: a tar keeps the names it holds; give no name", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = n.ctr(ctx, f, "images", "import", "-")
		return err
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", ref, err)
	}
	// ctr reads a tar stream: the layout goes through a pipe, its index naming the image.
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	werr := make(chan error, 1)
	go func() {
		err := tarLayout(w, path, reference.TagNameOnly(named).String())
		w.Close()
		werr <- err
	}()
	_, err = n.ctr(ctx, r, "images", "import", "-")
	if wErr := <-werr; wErr != nil && err == nil {
		err = wErr
	}
	return err
}

// tarLayout writes the OCI layout in dir as a tar, with its one image named ref in index.json as
// containerd's importer reads names (io.containerd.image.name).
func tarLayout(w io.Writer, dir, ref string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if rel == "index.json" {
			if data, err = nameIndex(data, ref); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			hdr.Size = int64(len(data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// nameIndex sets the name of the one image an OCI index lists.
func nameIndex(data []byte, ref string) ([]byte, error) {
	var index map[string]any
	if err := json.Unmarshal(data, &index); err != nil {
		return nil, err
	}
	manifests, _ := index["manifests"].([]any)
	if len(manifests) != 1 {
		return nil, fmt.Errorf("the layout holds %d images; want one", len(manifests))
	}
	m, ok := manifests[0].(map[string]any)
	if !ok {
		return nil, errors.New("malformed manifests entry")
	}
	ann, _ := m["annotations"].(map[string]any)
	if ann == nil {
		ann = map[string]any{}
	}
	ann["io.containerd.image.name"] = ref
	m["annotations"] = ann
	return json.Marshal(index)
}

// pauseImage returns the sandbox image's layout: the project's bin/images/pause when there is one,
// else the kit's own, built into bin/test/node-pause once for each version of its source.
func (n *Node) pauseImage(ctx context.Context, repo string) (string, error) {
	if n.opts.PauseImage != "" {
		return n.opts.PauseImage, nil
	}
	if _, err := os.Stat(filepath.Join(n.bin, "images", "pause", "index.json")); err == nil {
		return filepath.Join(n.bin, "images", "pause"), nil
	}
	src, err := os.ReadFile(filepath.Join(repo, "test", "node", "pause", "main.go"))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(src, runtime.Version()...))
	dir := filepath.Join(n.bin, "test", "node-pause-"+hex.EncodeToString(sum[:8]))
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return dir, nil
	}
	// Built beside, then renamed into place: test processes may build it at once.
	tmp, err := os.MkdirTemp(filepath.Join(n.bin), ".node-pause-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	binary := filepath.Join(tmp, "pause")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", binary, "./test/node/pause")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the pause binary: %v\n%s", err, out)
	}
	if err := WriteImage(filepath.Join(tmp, "layout"), binary, "/pause"); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(filepath.Join(tmp, "layout"), dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, statErr := os.Stat(filepath.Join(dir, "index.json")); statErr != nil {
			return "", err
		}
	}
	return dir, nil
}

// WriteImage writes an OCI image layout at dir holding one linux image of a single static binary,
// at path in the image and as its entrypoint.
func WriteImage(dir, binary, path string) error {
	data, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.WriteHeader(&tar.Header{Name: path[1:], Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
			if err == nil {
				_, err = tw.Write(data)
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	// OCI media types throughout, as an OCI layout is expected to hold.
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Entrypoint = []string{path}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return lp.AppendImage(img, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
}

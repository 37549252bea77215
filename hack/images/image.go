package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is the date of every file and of the images themselves: a constant, so that the date of a
// build changes no digest.
var epoch = time.Unix(0, 0).UTC()

// builder assembles images from binaries built by buildBinaries and packages fetched by fetch.
type builder struct {
	binDir, debDir string
	lock           *Lock
	// Registry and Tag name the images (registry/name:tag); Version is the one buildBinaries
	// stamped in the binaries.
	Registry, Tag, Version string
}

func (b *builder) ref(img Image) string { return b.Registry + "/" + img.Name + ":" + b.Tag }

// index is an image's multi-platform index.
func (b *builder) index(ctx context.Context, img Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range img.Platforms {
		im, err := b.image(ctx, img, arch)
		if err != nil {
			return nil, fmt.Errorf("%s for %s: %w", img.Name, arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: im,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	return mutate.Annotations(idx, b.annotations(img)).(v1.ImageIndex), nil
}

func (b *builder) annotations(img Image) map[string]string {
	return map[string]string{
		"org.opencontainers.image.title":   img.Name,
		"org.opencontainers.image.version": b.Tag,
		"org.opencontainers.image.created": epoch.Format(time.RFC3339),
	}
}

// image is one platform's image: a layer of Debian packages, when the image has some, and a layer
// of its own files (binaries, users, symlinks, SBOM).
func (b *builder) image(ctx context.Context, img Image, arch string) (v1.Image, error) {
	var layers []v1.Layer
	var history []string
	debs := b.lock.debs(img.Name, arch)
	if len(img.Debian) > 0 {
		if len(debs) == 0 {
			return nil, fmt.Errorf("%s pins no package for %s: run go run ./hack/images pin", lockFile, arch)
		}
		t := tree{}
		for _, d := range debs {
			if err := debTar(ctx, filepath.Join(b.debDir, d.File()), func(r io.Reader) error { return t.addTar(r, img.DebianPrune) }); err != nil {
				return nil, err
			}
		}
		l, err := t.layer(epoch)
		if err != nil {
			return nil, err
		}
		layers, history = append(layers, l), append(history, "Debian packages: "+strings.Join(img.Debian, " ")+" and their dependencies")
	}

	t := tree{}
	t.dir("tmp", 0o1777)
	passwd, group := "root:x:0:0:root:/root:/sbin/nologin\n", "root:x:0:\n"
	for _, u := range append([]User{img.User}, img.OtherUsers...) {
		if u.ID != 0 {
			id := strconv.Itoa(u.ID)
			passwd += u.Name + ":x:" + id + ":" + id + ":" + u.Name + ":/nonexistent:/sbin/nologin\n"
			group += u.Name + ":x:" + id + ":\n"
		}
	}
	t.file("etc/passwd", 0o644, []byte(passwd))
	t.file("etc/group", 0o644, []byte(group))
	var bins []goBinary
	for _, bin := range img.Binaries {
		data, err := os.ReadFile(filepath.Join(b.binDir, arch, binaryName(bin.Package)))
		if err != nil {
			return nil, err
		}
		info, err := buildinfo.Read(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bin.Path, err)
		}
		t.file(bin.Path, 0o755, data)
		bins = append(bins, goBinary{Path: bin.Path, Data: data, Info: info})
	}
	for p, target := range img.Symlinks {
		t.symlink(p, target)
	}
	doc, err := sbom(b.Registry+"/"+img.Name, b.Tag, b.Version, bins, debs, b.lock.Distro)
	if err != nil {
		return nil, err
	}
	t.file(sbomDir+"/"+img.Name+".cdx.json", 0o644, doc)
	l, err := t.layer(epoch)
	if err != nil {
		return nil, err
	}
	layers, history = append(layers, l), append(history, img.Name+": binaries, users and SBOM")

	im := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	im = mutate.ConfigMediaType(im, types.OCIConfigJSON)
	user := strconv.Itoa(img.User.ID)
	im, err = mutate.ConfigFile(im, &v1.ConfigFile{
		Architecture: arch, OS: "linux",
		Config: v1.Config{User: user + ":" + user, Entrypoint: img.Entrypoint, Env: img.Env, WorkingDir: "/",
			Labels: b.annotations(img)},
	})
	if err != nil {
		return nil, err
	}
	for i, l := range layers {
		if im, err = mutate.Append(im, mutate.Addendum{Layer: l, MediaType: types.OCILayer,
			History: v1.History{CreatedBy: "hack/images: " + history[i], Created: v1.Time{Time: epoch}}}); err != nil {
			return nil, err
		}
	}
	return mutate.CreatedAt(im, v1.Time{Time: epoch})
}

// writeLayout writes the index as an OCI image layout in dir, replacing what was there. The
// layout's index names it ref, as containerd's and other tools' import reads it.
func writeLayout(dir string, idx v1.ImageIndex, ref, tag string) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	p, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          ref,
		"org.opencontainers.image.ref.name": tag,
	})); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

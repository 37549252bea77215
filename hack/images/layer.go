package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tree is a layer's files before they are written: by clean relative path (usr/sbin/iptables).
type tree map[string]*entry

type entry struct {
	hdr  tar.Header
	data []byte
}

func (t tree) dir(p string, mode int64) {
	t.add(p, &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: mode}})
}

func (t tree) file(p string, mode int64, data []byte) {
	t.add(p, &entry{hdr: tar.Header{Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}, data: data})
}

func (t tree) symlink(p, target string) {
	t.add(p, &entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}})
}

// add puts e at p, with the parent directories p lacks.
func (t tree) add(p string, e *entry) {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	for dir := path.Dir(p); dir != "."; dir = path.Dir(dir) {
		if _, ok := t[dir]; !ok {
			t[dir] = &entry{hdr: tar.Header{Typeflag: tar.TypeDir, Mode: 0o755}}
		}
	}
	t[p] = e
}

// addTar adds a tar's entries but those under a directory matching one of prune (path.Match
// patterns). Hard links become copies of their target, which keeps the layer's entries free to be
// sorted; a directory seen twice keeps its first mode, a file seen twice must be the same.
func (t tree) addTar(r io.Reader, prune []string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		p := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if p == "" || pruned(p, prune) {
			continue
		}
		e := &entry{hdr: tar.Header{Typeflag: h.Typeflag, Mode: h.Mode & 0o7777, Linkname: h.Linkname}}
		switch h.Typeflag {
		case tar.TypeDir:
			if _, ok := t[p]; ok {
				continue
			}
		case tar.TypeReg:
			if e.data, err = io.ReadAll(tr); err != nil {
				return err
			}
			e.hdr.Size = int64(len(e.data))
		case tar.TypeLink:
			target, ok := t[strings.TrimPrefix(path.Clean("/"+h.Linkname), "/")]
			if !ok || target.hdr.Typeflag != tar.TypeReg {
				return fmt.Errorf("%s: hard link to %s, which is not a file before it", p, h.Linkname)
			}
			e.hdr, e.data = target.hdr, target.data
			e.hdr.Mode = h.Mode & 0o7777
		case tar.TypeSymlink:
		default:
			return fmt.Errorf("%s: unsupported tar entry type %q", p, h.Typeflag)
		}
		if old, ok := t[p]; ok && old.hdr.Typeflag != tar.TypeDir &&
			(old.hdr.Typeflag != e.hdr.Typeflag || old.hdr.Linkname != e.hdr.Linkname || !bytes.Equal(old.data, e.data)) {
			return fmt.Errorf("%s: two packages ship it, differently", p)
		}
		t.add(p, e)
	}
}

func pruned(p string, patterns []string) bool {
	for dir := p; dir != "."; dir = path.Dir(dir) {
		for _, pat := range patterns {
			if ok, _ := path.Match(pat, dir); ok {
				return true
			}
		}
	}
	return false
}

// layer writes the tree as an uncompressed tar in path order, every entry owned by root and dated
// epoch, and wraps it as a gzip-compressed OCI layer: the same tree gives the same bytes, so the
// same digest.
func (t tree) layer(epoch time.Time) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(t)) {
		e := t[p]
		h := e.hdr
		h.Name, h.ModTime, h.Format = p, epoch, tar.FormatPAX
		if h.Typeflag == tar.TypeDir {
			h.Name += "/"
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

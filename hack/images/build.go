package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// buildAll writes each image's layout into out/<name> and reports its digest and sizes.
func buildAll(ctx context.Context, b *builder, out string, selected []Image, report io.Writer) error {
	for _, img := range selected {
		idx, err := b.index(ctx, img)
		if err != nil {
			return err
		}
		if err := writeLayout(filepath.Join(out, img.Name), idx, b.ref(img), b.Tag); err != nil {
			return err
		}
		digest, err := idx.Digest()
		if err != nil {
			return err
		}
		sizes, err := platformSizes(idx)
		if err != nil {
			return err
		}
		fmt.Fprintf(report, "%-16s %s  %s\n", img.Name, digest, strings.Join(sizes, ", "))
	}
	return nil
}

// platformSizes is what pulling each platform's image transfers: manifest, config and layers.
func platformSizes(idx v1.ImageIndex) ([]string, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, desc := range m.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return nil, err
		}
		mf, err := img.Manifest()
		if err != nil {
			return nil, err
		}
		size := desc.Size + mf.Config.Size
		for _, l := range mf.Layers {
			size += l.Size
		}
		out = append(out, fmt.Sprintf("%s %.1f MB", desc.Platform.Architecture, float64(size)/1e6))
	}
	return out, nil
}

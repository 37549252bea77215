package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// push sends each image's index, as built in out/<name>, to registry/<name>:tag, with the
// credentials of the Docker config (~/.docker/config.json) and its helpers.
func push(ctx context.Context, out, registry, tag string, selected []Image, report io.Writer) error {
	for _, img := range selected {
		lp, err := layout.FromPath(filepath.Join(out, img.Name))
		if err != nil {
			return fmt.Errorf("%s: %w (run make images first)", img.Name, err)
		}
		top, err := lp.ImageIndex()
		if err != nil {
			return err
		}
		m, err := top.IndexManifest()
		if err != nil {
			return err
		}
		if len(m.Manifests) != 1 {
			return fmt.Errorf("%s: the layout holds %d entries, want one index", img.Name, len(m.Manifests))
		}
		idx, err := top.ImageIndex(m.Manifests[0].Digest)
		if err != nil {
			return err
		}
		ref, err := name.ParseReference(registry + "/" + img.Name + ":" + tag)
		if err != nil {
			return err
		}
		if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		fmt.Fprintf(report, "%s@%s\n", ref, m.Manifests[0].Digest)
	}
	return nil
}

// Command images builds meshinit's container images without a container engine: for each image
// of the table in table.go, an OCI image layout in bin/images/<name>/ holding one index with an
// image per platform, made of static Go binaries, the pinned Debian packages some need, and an
// SBOM. The same sources and pins give the same digests: binaries are built reproducibly, files
// are sorted and dated epoch, owned by root.
//
//	go run ./hack/images build [name...]             make images: every image, or those named
//	go run ./hack/images fetch                       make provision: the pinned .debs into bin/debs
//	go run ./hack/images pin                         resolve the Debian packages anew into debian.lock.json
//	go run ./hack/images push -registry R [name...]  make push: the chart's images, or those named
//
// Images are named <registry>/<name>:<tag>, by default the chart's registry and appVersion.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/prereq"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: images build|fetch|pin|push [flags] [name...]")
	}
	root, err := prereq.FindRepoRoot(".")
	if err != nil {
		return err
	}
	d, err := defaults(root)
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	registry := fs.String("registry", d.Registry, "the registry and path images are named under")
	tag := fs.String("tag", d.Tag, "the images' tag")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	a := apt{dir: d.aptDir}
	switch args[0] {
	case "build":
		selected, err := selectImages(fs.Args(), func(Image) bool { return true })
		if err != nil {
			return err
		}
		b, err := d.builder(ctx, a, *registry, *tag)
		if err != nil {
			return err
		}
		return buildAll(ctx, b, d.Out, selected, os.Stdout)
	case "fetch":
		lock, err := readLock(root)
		if err != nil {
			return err
		}
		return fetch(ctx, a, lock, d.debDir)
	case "pin":
		distro, err := hostDistro()
		if err != nil {
			return err
		}
		lock, err := pin(ctx, a, distro)
		if err != nil {
			return err
		}
		data, err := json.MarshalIndent(lock, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, lockFile), append(data, '\n'), 0o644)
	case "push":
		selected, err := selectImages(fs.Args(), func(img Image) bool { return !img.Test })
		if err != nil {
			return err
		}
		return push(ctx, d.Out, *registry, *tag, selected, os.Stdout)
	}
	return fmt.Errorf("unknown command %q: build, fetch, pin or push", args[0])
}

// settings are where things go, and the names of the images.
type settings struct {
	Out, binDir, debDir, aptDir string
	Registry, Tag, Version      string
	root                        string
}

// defaults reads the images' registry and tag from the chart, so that the images are named as
// the chart deploys them.
func defaults(root string) (settings, error) {
	s := settings{root: root, Out: filepath.Join(root, "bin", "images"), binDir: filepath.Join(root, "bin", "imagebin"),
		debDir: filepath.Join(root, "bin", "debs"), aptDir: filepath.Join(root, "bin", "debs", "apt")}
	ch, err := charts.Load()
	if err != nil {
		return s, err
	}
	s.Tag = ch.Metadata.AppVersion
	s.Version = "v" + s.Tag
	registry, ok := ch.Values["global"].(map[string]any)["image"].(map[string]any)["registry"].(string)
	if !ok {
		return s, fmt.Errorf("the chart's values have no global.image.registry")
	}
	s.Registry = registry
	return s, nil
}

// builder fetches what is missing, builds the binaries and returns a builder of images.
func (s settings) builder(ctx context.Context, a apt, registry, tag string) (*builder, error) {
	lock, err := readLock(s.root)
	if err != nil {
		return nil, err
	}
	if err := fetch(ctx, a, lock, s.debDir); err != nil {
		return nil, err
	}
	if err := buildBinaries(ctx, s.root, s.binDir, s.Version); err != nil {
		return nil, err
	}
	return &builder{binDir: s.binDir, debDir: s.debDir, lock: lock, Registry: registry, Tag: tag, Version: s.Version}, nil
}

// selectImages returns the images named, or without names those keep accepts.
func selectImages(names []string, keep func(Image) bool) ([]Image, error) {
	var out []Image
	for _, img := range images {
		if len(names) == 0 && keep(img) || slices.Contains(names, img.Name) {
			out = append(out, img)
		}
	}
	for _, n := range names {
		if !slices.ContainsFunc(images, func(img Image) bool { return img.Name == n }) {
			return nil, fmt.Errorf("no image %q", n)
		}
	}
	return out, nil
}

// hostDistro is the host's Debian release as package URLs name it, such as debian-12: the
// release whose packages the host's apt sources serve.
func hostDistro() (string, error) {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "", err
	}
	fields := map[string]string{}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			fields[k] = strings.Trim(v, `"`)
		}
	}
	if fields["ID"] == "" || fields["VERSION_ID"] == "" {
		return "", fmt.Errorf("/etc/os-release names no ID and VERSION_ID")
	}
	return fields["ID"] + "-" + fields["VERSION_ID"], nil
}

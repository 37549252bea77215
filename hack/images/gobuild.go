package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
)

// binaryName is the file go build writes for a main package.
func binaryName(pkg string) string { return path.Base(pkg) }

// buildBinaries compiles every image's Go binaries for each platform into dir/<arch>/, static and
// reproducible: no cgo, no paths, no VCS stamp, no build ID, and the same target features whatever
// the caller's environment sets, so that the same source gives the same bytes anywhere.
func buildBinaries(ctx context.Context, root, dir, version string) error {
	pkgs := map[string][]string{}
	for _, img := range images {
		for _, arch := range img.Platforms {
			for _, b := range img.Binaries {
				if !slices.Contains(pkgs[arch], b.Package) {
					pkgs[arch] = append(pkgs[arch], b.Package)
				}
			}
		}
	}
	for _, arch := range slices.Sorted(maps.Keys(pkgs)) {
		out := filepath.Join(dir, arch)
		if err := os.MkdirAll(out, 0o755); err != nil {
			return err
		}
		args := []string{"build", "-trimpath", "-buildvcs=false",
			"-ldflags=-s -w -buildid= -X github.com/meshinit/meshinit/api.Version=" + version, "-o", out + "/"}
		cmd := exec.CommandContext(ctx, "go", append(args, pkgs[arch]...)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch,
			"GOAMD64=v1", "GOARM64=v8.0", "GOFLAGS=", "GOEXPERIMENT=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build for %s: %w\n%s", arch, err, out)
		}
	}
	return nil
}

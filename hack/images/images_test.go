package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/meshinit/meshinit/test/prereq"
)

var (
	setupOnce sync.Once
	shared    struct {
		b      *builder
		layout string // every image, built once for the tests that only read them
		err    error
	}
)

// setup builds the binaries once per test process, into bin/test/imagebin so that `make images`
// may run beside the tests, and every image once into a temporary directory. The Debian packages
// come from `make provision`: the tests fetch nothing.
func setup(t *testing.T) (*builder, string) {
	t.Helper()
	root := prereq.RepoRoot(t)
	d, err := defaults(root)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := readLock(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, deb := range lock.Packages {
		if err := verify(filepath.Join(d.debDir, deb.File()), deb.SHA256); err != nil {
			prereq.Missing(t, "the pinned Debian packages in bin/debs (run: make provision): %v", err)
		}
	}
	setupOnce.Do(func() {
		binDir := filepath.Join(root, "bin", "test", "imagebin")
		if shared.err = buildBinaries(context.Background(), root, binDir, d.Version); shared.err != nil {
			return
		}
		shared.b = &builder{binDir: binDir, debDir: d.debDir, lock: lock, Registry: d.Registry, Tag: d.Tag, Version: d.Version}
		shared.layout, shared.err = os.MkdirTemp("", "images-test-")
		if shared.err == nil {
			shared.err = buildAll(context.Background(), shared.b, shared.layout, images, io.Discard)
		}
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.b, shared.layout
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.layout != "" {
		os.RemoveAll(shared.layout)
	}
	os.Exit(code)
}

// TestReproducible: building again from the same binaries and packages gives the same bytes.
func TestReproducible(t *testing.T) {
	b, first := setup(t)
	second := t.TempDir()
	var report bytes.Buffer
	if err := buildAll(context.Background(), b, second, images, &report); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", report.String())
	for _, img := range images {
		if a, b := digest(t, filepath.Join(first, img.Name)), digest(t, filepath.Join(second, img.Name)); a != b {
			t.Errorf("%s: %s, then %s", img.Name, a, b)
		}
	}
}

// TestImages: each platform's image runs as its table says, holds its binaries, static and for
// its architecture, a file tree owned by root and dated epoch, and an SBOM that lists every Go
// module of its binaries and every Debian package pinned for it.
func TestImages(t *testing.T) {
	b, dir := setup(t)
	for _, img := range images {
		for _, arch := range img.Platforms {
			t.Run(img.Name+"/"+arch, func(t *testing.T) {
				im := platformImage(t, filepath.Join(dir, img.Name), arch)
				cf, err := im.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				id := strconv.Itoa(img.User.ID)
				if cf.OS != "linux" || cf.Architecture != arch || cf.Config.User != id+":"+id ||
					!slices.Equal(cf.Config.Entrypoint, img.Entrypoint) || !slices.Equal(cf.Config.Env, img.Env) || !cf.Created.Equal(epoch) {
					t.Errorf("config: %+v", cf)
				}
				files := extract(t, im)
				for p, f := range files {
					if f.hdr.Uid != 0 || f.hdr.Gid != 0 || !f.hdr.ModTime.Equal(epoch) {
						t.Errorf("%s: owner %d:%d, date %v", p, f.hdr.Uid, f.hdr.Gid, f.hdr.ModTime)
					}
				}
				if u := img.User; !strings.Contains(string(files["etc/passwd"].data), u.Name+":x:"+id+":"+id+":") {
					t.Errorf("/etc/passwd has no %s with %d:\n%s", u.Name, u.ID, files["etc/passwd"].data)
				}
				var bom cdx.BOM
				if err := cdx.NewBOMDecoder(bytes.NewReader(files[strings.TrimPrefix(sbomDir, "/")+"/"+img.Name+".cdx.json"].data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
					t.Fatalf("SBOM: %v", err)
				}
				purls := map[string]bool{}
				for _, c := range *bom.Components {
					purls[c.PackageURL] = true
				}
				for _, bin := range img.Binaries {
					f, ok := files[strings.TrimPrefix(bin.Path, "/")]
					if !ok || f.hdr.Mode != 0o755 {
						t.Errorf("%s: missing, or not executable", bin.Path)
						continue
					}
					checkStatic(t, bin.Path, f.data, arch)
					info, err := buildinfo.Read(bytes.NewReader(f.data))
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range info.Deps {
						if !slices.ContainsFunc(*bom.Components, func(c cdx.Component) bool { return c.Name == m.Path && c.Version == m.Version }) {
							t.Errorf("SBOM: %s has no module %s %s of %s", img.Name, m.Path, m.Version, bin.Path)
						}
					}
				}
				debs := b.lock.debs(img.Name, arch)
				if len(img.Debian) > 0 && !slices.ContainsFunc(debs, func(d Deb) bool { return d.Name == img.Debian[0] }) {
					t.Errorf("the lock pins no %s for %s", img.Debian[0], arch)
				}
				for _, d := range debs {
					if !slices.ContainsFunc(*bom.Components, func(c cdx.Component) bool {
						return c.Name == d.Name && c.Version == d.Version && (*c.Hashes)[0].Value == d.SHA256
					}) {
						t.Errorf("SBOM: no Debian package %s %s", d.Name, d.Version)
					}
				}
				for p := range img.Symlinks {
					if target := resolve(files, strings.TrimPrefix(p, "/")); files[target] == nil || files[target].hdr.Typeflag != tar.TypeReg {
						t.Errorf("%s leads to %q, not a file", p, target)
					}
				}
			})
		}
	}
}

// TestKumaInitIPTables runs kuma-init's image for this machine's architecture as a container
// would (its root file system, in a network namespace of its own, XTABLES_LOCKFILE in /tmp):
// both backends' tools load their libraries, and kuma-init, also as /usr/bin/kumactl with
// kumactl's command line, installs its rules with the backend that already holds rules, nft by
// default and legacy when legacy tables are in use.
func TestKumaInitIPTables(t *testing.T) {
	prereq.Root(t)
	unshare := prereq.Binary(t, "unshare")
	_, dir := setup(t)
	rootfs := t.TempDir()
	tarball := exec.Command("tar", "-x", "-C", rootfs)
	tarball.Stdin = mutate.Extract(platformImage(t, filepath.Join(dir, "kuma-init"), runtime.GOARCH))
	if out, err := tarball.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	if err := os.Mkdir(filepath.Join(rootfs, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "tmp", "config.yaml"), []byte("kumaDPUser: \"5678\"\nredirect:\n  inbound:\n    excludePorts: [22]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// /proc tells kuma-init which legacy tables exist; a mount namespace keeps it to this test.
	sh := func(script string) string {
		t.Helper()
		cmd := exec.Command(unshare, "--net", "--mount", "sh", "-euc", "mount -t proc proc proc; "+script)
		cmd.Dir = rootfs
		cmd.Env = append(os.Environ(), "XTABLES_LOCKFILE=/tmp/xtables.lock")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		return string(out)
	}
	for tool, want := range map[string]string{"iptables": "nf_tables", "ip6tables-restore": "nf_tables", "iptables-nft-save": "nf_tables",
		"iptables-legacy": "legacy", "ip6tables-legacy-restore": "legacy", "iptables-legacy-save": "legacy"} {
		if out := sh("chroot . /usr/sbin/" + tool + " --version"); !strings.Contains(out, want) {
			t.Errorf("%s --version: %q, want %s", tool, out, want)
		}
	}
	// As Kuma's injector runs its kuma-init.
	if out := sh("chroot . /usr/bin/kumactl install transparent-proxy --config=/tmp/config.yaml && chroot . iptables-nft-save -t nat"); !strings.Contains(out, "installed with iptables-nft") ||
		!strings.Contains(out, "-A KUMA_MESH_OUTBOUND") {
		t.Errorf("kumactl install transparent-proxy with no legacy tables:\n%s", out)
	}
	if out := sh("chroot . iptables-legacy -t nat -A OUTPUT -d 192.0.2.1 -j RETURN && chroot . /usr/local/bin/kuma-init --config /tmp/config.yaml && chroot . iptables-legacy-save -t nat"); !strings.Contains(out, "installed with iptables-legacy") ||
		!strings.Contains(out, "-A KUMA_MESH_OUTBOUND") {
		t.Errorf("kuma-init with legacy rules in place:\n%s", out)
	}
}

// TestKumaInitNFTables runs kuma-init-nft's image for this machine's architecture as a container
// would, in a network namespace of its own: it holds no iptables program or library, and
// kuma-init, as /usr/bin/kumactl with kumactl's command line and the backend left to auto,
// installs its rules with nftables, which the host's nft lists, creating no iptables table.
func TestKumaInitNFTables(t *testing.T) {
	prereq.Root(t)
	unshare, chroot, nft := prereq.Binary(t, "unshare"), prereq.Binary(t, "chroot"), prereq.Binary(t, "nft")
	_, dir := setup(t)
	im := platformImage(t, filepath.Join(dir, "kuma-init-nft"), runtime.GOARCH)
	for p := range extract(t, im) {
		if strings.Contains(path.Base(p), "tables") || strings.HasSuffix(p, ".so") || strings.Contains(p, ".so.") {
			t.Errorf("kuma-init-nft holds %s", p)
		}
	}
	rootfs := t.TempDir()
	tarball := exec.Command("tar", "-x", "-C", rootfs)
	tarball.Stdin = mutate.Extract(im)
	if out, err := tarball.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	for _, d := range []string{"proc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(rootfs, "tmp", "config.yaml"), []byte("kumaDPUser: kuma-dp\nredirect:\n  inbound:\n    excludePorts: [22]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// With the image's environment: no PATH, so no iptables-restore of the host either.
	cmd := exec.Command(unshare, "--net", "--mount", "sh", "-euc", "mount -t proc proc proc; env -i "+chroot+" . /usr/bin/kumactl install transparent-proxy --config=/tmp/config.yaml; "+nft+" list tables; "+nft+" list table ip meshinit")
	cmd.Dir = rootfs
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "installed with nftables") || !strings.Contains(string(out), "chain KUMA_MESH_OUTBOUND") ||
		!strings.Contains(string(out), "skuid 5678") || !strings.Contains(string(out), "table ip meshinit\ntable ip6 meshinit\ntable ip meshinit {") {
		t.Errorf("kumactl install transparent-proxy in kuma-init-nft: %v; want nftables' tables of ours alone, the proxy's user by name\n%s", err, out)
	}
}

// digest is the image's index's digest: what a registry serves for its tag.
func digest(t *testing.T, dir string) v1.Hash {
	t.Helper()
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return m.Manifests[0].Digest
}

// platformImage is the image of arch in the layout's index.
func platformImage(t *testing.T, dir, arch string) v1.Image {
	t.Helper()
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Platform.OS == "linux" && d.Platform.Architecture == arch {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}
	}
	t.Fatalf("%s has no image for linux/%s", dir, arch)
	return nil
}

type file struct {
	hdr  *tar.Header
	data []byte
}

// extract reads every layer's entries, as a container's root file system would show them.
func extract(t *testing.T, img v1.Image) map[string]*file {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*file{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimSuffix(h.Name, "/")] = &file{hdr: h, data: data}
		}
		rc.Close()
	}
	return files
}

// resolve follows symbolic links from p within the files.
func resolve(files map[string]*file, p string) string {
	for range 10 {
		f := files[p]
		if f == nil || f.hdr.Typeflag != tar.TypeSymlink {
			return p
		}
		if path.IsAbs(f.hdr.Linkname) {
			p = strings.TrimPrefix(f.hdr.Linkname, "/")
		} else {
			p = path.Join(path.Dir(p), f.hdr.Linkname)
		}
	}
	return p
}

// checkStatic: an executable for arch that needs no dynamic loader or library.
func checkStatic(t *testing.T, name string, data []byte, arch string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[arch]
	libs, _ := f.ImportedLibraries()
	if f.Machine != want || len(libs) > 0 || slices.ContainsFunc(f.Progs, func(p *elf.Prog) bool { return p.Type == elf.PT_INTERP }) {
		t.Errorf("%s: machine %v (want %v), libraries %v, or a dynamic loader", name, f.Machine, want, libs)
	}
}

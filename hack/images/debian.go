package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// lockFile pins, for each image and platform, every Debian package it installs: the closure of
// the image's Debian packages' dependencies, resolved by apt for an empty system.
const lockFile = "hack/images/debian.lock.json"

// Lock is lockFile's content.
type Lock struct {
	// Distro is the Debian release the packages come from, as package URLs spell it (debian-12).
	Distro   string `json:"distro"`
	Packages []Deb  `json:"packages"`
}

// Deb is one pinned package of one image's platform.
type Deb struct {
	Image    string `json:"image"`
	Platform string `json:"platform"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	// Arch is the package's own architecture: the platform's, or all.
	Arch   string `json:"arch"`
	SHA256 string `json:"sha256"`
}

// File is the name apt-get download gives the package.
func (d Deb) File() string {
	return fmt.Sprintf("%s_%s_%s.deb", d.Name, strings.ReplaceAll(d.Version, ":", "%3a"), d.Arch)
}

func readLock(root string) (*Lock, error) {
	data, err := os.ReadFile(filepath.Join(root, lockFile))
	if err != nil {
		return nil, err
	}
	var l Lock
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", lockFile, err)
	}
	return &l, nil
}

// debs are the pinned packages of an image's platform.
func (l *Lock) debs(image, platform string) []Deb {
	var out []Deb
	for _, d := range l.Packages {
		if d.Image == image && d.Platform == platform {
			out = append(out, d)
		}
	}
	return out
}

// apt runs apt-get or apt-cache on a private state under dir (bin/debs/apt): its own package
// lists for both architectures and an empty dpkg status, so that neither the host's apt and dpkg
// configuration nor its installed packages change or count. The sources are the host's.
type apt struct {
	dir string
}

func (a apt) cmd(ctx context.Context, arch, name string, args ...string) *exec.Cmd {
	opts := []string{
		"-o", "Dir::State::Lists=" + filepath.Join(a.dir, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(a.dir, "status"),
		"-o", "Dir::Cache=" + filepath.Join(a.dir, "cache"),
		"-o", "APT::Architecture=" + arch,
		"-o", "Debug::NoLocking=1",
		"-o", "Acquire::Languages=none",
		// Downloads land in bin/, which apt's sandbox user may not be allowed to write.
		"-o", "APT::Sandbox::User=root",
	}
	for _, p := range allPlatforms {
		opts = append(opts, "-o", "APT::Architectures::="+p)
	}
	cmd := exec.CommandContext(ctx, name, append(opts, args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	return cmd
}

func (a apt) run(ctx context.Context, arch, name string, args ...string) ([]byte, error) {
	cmd := a.cmd(ctx, arch, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	return out, nil
}

func (a apt) update(ctx context.Context) error {
	for _, d := range []string{"lists/partial", "cache/archives/partial"} {
		if err := os.MkdirAll(filepath.Join(a.dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(a.dir, "status"), nil, 0o644); err != nil {
		return err
	}
	_, err := a.run(ctx, allPlatforms[0], "apt-get", "update", "-q")
	return err
}

// pin resolves every image's Debian packages for each of its platforms, as apt would install
// them on an empty system without recommends, and returns the lock.
func pin(ctx context.Context, a apt, distro string) (*Lock, error) {
	if err := a.update(ctx); err != nil {
		return nil, err
	}
	lock := &Lock{Distro: distro, Packages: []Deb{}}
	for _, img := range images {
		if len(img.Debian) == 0 {
			continue
		}
		for _, arch := range img.Platforms {
			out, err := a.run(ctx, arch, "apt-get", append([]string{"install", "--print-uris", "-qq", "--no-install-recommends"}, img.Debian...)...)
			if err != nil {
				return nil, err
			}
			// Each line: 'URI' name_version_arch.deb size hash.
			for line := range strings.Lines(string(out)) {
				fields := strings.Fields(line)
				if len(fields) < 2 {
					continue
				}
				parts := strings.Split(strings.TrimSuffix(fields[1], ".deb"), "_")
				if len(parts) != 3 {
					return nil, fmt.Errorf("apt-get --print-uris: unexpected file name %q", fields[1])
				}
				d := Deb{Image: img.Name, Platform: arch, Name: parts[0], Version: strings.ReplaceAll(parts[1], "%3a", ":"), Arch: parts[2]}
				if d.SHA256, err = a.sha256(ctx, d); err != nil {
					return nil, err
				}
				lock.Packages = append(lock.Packages, d)
			}
		}
	}
	slices.SortFunc(lock.Packages, func(x, y Deb) int {
		return strings.Compare(x.Image+" "+x.Platform+" "+x.Name, y.Image+" "+y.Platform+" "+y.Name)
	})
	return lock, nil
}

// sha256 is the package's hash in apt's (signed) index.
func (a apt) sha256(ctx context.Context, d Deb) (string, error) {
	out, err := a.run(ctx, d.Arch, "apt-cache", "show", "--no-all-versions", d.Name+":"+d.Arch+"="+d.Version)
	if err != nil {
		return "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SHA256: "); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("apt-cache show %s=%s: no SHA256", d.Name, d.Version)
}

// fetch makes sure every pinned package is in dir with its pinned hash, downloading the missing
// ones with apt-get download (which checks them against apt's signed indexes too).
func fetch(ctx context.Context, a apt, lock *Lock, dir string) error {
	var missing []Deb
	seen := map[string]bool{}
	for _, d := range lock.Packages {
		if seen[d.File()] {
			continue
		}
		seen[d.File()] = true
		if verify(filepath.Join(dir, d.File()), d.SHA256) != nil {
			missing = append(missing, d)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := a.update(ctx); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	args := []string{"download", "-q"}
	for _, d := range missing {
		args = append(args, d.Name+":"+d.Arch+"="+d.Version)
	}
	cmd := a.cmd(ctx, allPlatforms[0], "apt-get", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get download: %w\n%s\n(a pinned version the mirror no longer serves needs a new pin: go run ./hack/images pin)", err, out)
	}
	for _, d := range missing {
		if err := verify(filepath.Join(dir, d.File()), d.SHA256); err != nil {
			return err
		}
	}
	return nil
}

// verify checks a file's SHA-256.
func verify(path, want string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%s: sha256 %s, pinned %s", path, got, want)
	}
	return nil
}

// debTar streams a package's file system tree as a tar, from dpkg-deb.
func debTar(ctx context.Context, path string, each func(io.Reader) error) error {
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--fsys-tarfile", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	readErr := each(out)
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("dpkg-deb --fsys-tarfile %s: %w\n%s", path, err, stderr.Bytes())
	}
	return readErr
}

package main

import "strings"

// images is every image this repository builds: what `make images` writes into bin/images and,
// but for the test images, what `make push` pushes. The chart's images are named as the chart
// names them (TestChartImages).
var images = []Image{
	{
		Name:       "injector",
		Binaries:   []Binary{{"./cmd/injector", "/injector"}},
		User:       User{"nonroot", 65532},
		Entrypoint: []string{"/injector"},
		Platforms:  allPlatforms,
	},
	{
		// install-cni copies /kuma-cni (its KUMA_CNI_BINARY) onto the node: it writes the host's
		// CNI directories, so it runs as root.
		Name:       "kuma-cni",
		Binaries:   []Binary{{"./cmd/install-cni", "/install-cni"}, {"./cmd/kuma-cni", "/kuma-cni"}},
		User:       User{"root", 0},
		Entrypoint: []string{"/install-cni"},
		Platforms:  allPlatforms,
	},
	kumaInit("kuma-init", "nft"),
	kumaInitNFT(),
	{
		Name:       "pause",
		Test:       true,
		Binaries:   []Binary{{"./test/images/pause", "/pause"}},
		User:       User{"pause", 65535},
		Entrypoint: []string{"/pause"},
		Platforms:  allPlatforms,
	},
	{
		// The sidecar's UID and GID are the injector's default ones, as in Kuma's kuma-dp image.
		Name:     "kuma-dp-standin",
		Test:     true,
		Binaries: []Binary{{"./test/images/kumadp", "/usr/bin/kuma-dp"}},
		// The killall of kuma-dp's preStop hook (killall -USR2 kuma-dp), which the stand-in is too.
		Symlinks:   map[string]string{"/usr/bin/killall": "kuma-dp"},
		User:       User{"kuma-dp", 5678},
		Entrypoint: []string{"/usr/bin/kuma-dp"},
		Platforms:  allPlatforms,
	},
	{
		Name:       "echo",
		Test:       true,
		Binaries:   []Binary{{"./test/images/echo", "/echo"}},
		User:       User{"nonroot", 65532},
		Entrypoint: []string{"/echo"},
		Platforms:  allPlatforms,
	},
	// kuma-init on a node whose iptables is legacy only: kuma-init has no nf_tables tools to
	// choose, so tests run it, as injected, on the legacy backend.
	kumaInit("kuma-init-legacy", "legacy"),
}

// kumaInit is kuma-init's image, whose unsuffixed iptables tools are backend's: nft for the
// chart's image, where the legacy ones stay beside them, and legacy for a test image without the
// nft ones.
func kumaInit(name, backend string) Image {
	img := Image{
		// kuma-init drives Debian's iptables, both backends, and picks the one the node uses:
		// root, with NET_ADMIN and NET_RAW from the pod spec. kuma-dp's user is there so that the
		// proxy's user may be given by name, as with Kuma's image.
		Name:     name,
		Binaries: []Binary{{"./cmd/kuma-init", "/usr/local/bin/kuma-init"}},
		Debian:   []string{"iptables"},
		// gconv's charset converters are most of libc6's size, and iptables converts no charset.
		DebianPrune: []string{"usr/lib/*/gconv"},
		// The unsuffixed tools, as Debian's iptables postinst makes them with update-alternatives
		// (which does not run here): backend's, below; the suffixed ones stay.
		Symlinks: map[string]string{
			// Where Kuma's image has kumactl, which Kuma's injector runs: kuma-init takes its
			// command lines.
			"/usr/bin/kumactl": "/usr/local/bin/kuma-init",
		},
		User:       User{"root", 0},
		OtherUsers: []User{{"kuma-dp", 5678}},
		Entrypoint: []string{"/usr/local/bin/kuma-init"},
		// kuma-init finds the iptables tools on PATH.
		Env:       []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Platforms: allPlatforms,
	}
	for _, tool := range []string{"iptables", "iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save"} {
		img.Symlinks["/usr/sbin/"+tool] = strings.Replace(tool, "tables", "tables-"+backend, 1)
	}
	if backend == "legacy" {
		img.Test = true
		// Everything nf_tables: its tools and what links to them.
		img.DebianPrune = append(img.DebianPrune, "usr/sbin/*-nft*", "usr/sbin/*-translate", "usr/sbin/xtables-monitor")
	}
	return img
}

// kumaInitNFT is kuma-init with no iptables at all, for nodes with nftables only: the static
// binary alone, which installs its rules over netlink with its nftables backend (auto takes it
// where no iptables-restore is on PATH). kuma-dp's user is there, and kumactl, as in kuma-init's
// image.
func kumaInitNFT() Image {
	return Image{
		Name:       "kuma-init-nft",
		Binaries:   []Binary{{"./cmd/kuma-init", "/usr/local/bin/kuma-init"}},
		Symlinks:   map[string]string{"/usr/bin/kumactl": "/usr/local/bin/kuma-init"},
		User:       User{"root", 0},
		OtherUsers: []User{{"kuma-dp", 5678}},
		Entrypoint: []string{"/usr/local/bin/kuma-init"},
		Platforms:  allPlatforms,
	}
}

// allPlatforms are the architectures Go cross-compiles to and Debian's mirror serves.
var allPlatforms = []string{"amd64", "arm64"}

// Image is one image: static Go binaries, and for some Debian packages, on no base image.
type Image struct {
	Name string
	// Test images serve the tests (the node kit): `make push` leaves them out.
	Test     bool
	Binaries []Binary
	// Debian packages, installed with their dependencies as pinned in debian.lock.
	Debian []string
	// DebianPrune are path.Match patterns of directories of the packages left out.
	DebianPrune []string
	// Symlinks are made in the image: path to target.
	Symlinks map[string]string
	// User is who the image runs as (group: the same number); OtherUsers are only in /etc/passwd.
	User       User
	OtherUsers []User
	Entrypoint []string
	Env        []string
	// Platforms are GOARCH values, all linux.
	Platforms []string
}

// Binary is a Go main package built into the image at Path.
type Binary struct {
	Package, Path string
}

// User is an entry of /etc/passwd and /etc/group.
type User struct {
	Name string
	ID   int
}

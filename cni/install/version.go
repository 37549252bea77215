package install

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/meshinit/meshinit/cni"
)

// convertedVersionCap is the highest version a converted .conf is given: the highest that the
// libcni of every runtime meshinit supports reads (containerd 1.6 and CRI-O have read 1.0.0 for
// years; 1.1.0 needs containerd 2). The file declared none, so its runtime never chose one.
const convertedVersionCap = "1.0.0"

// pluginVersion is the CNI version a .conf that declares none is converted at: the highest its
// plugin and kuma-cni both speak, up to convertedVersionCap. The plugin, from the node's bin dir,
// answers the VERSION command, which every plugin built on the CNI library does without touching
// anything.
func (in *Installer) pluginVersion(pluginType string) (string, error) {
	path := filepath.Join(in.cfg.MountedBinDir, pluginType)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := invoke.GetVersionInfo(ctx, path, nil)
	if err != nil {
		return "", fmt.Errorf("%s could not be asked which CNI versions it speaks (%s: %v)", pluginType, path, err)
	}
	best := ""
	for _, v := range info.SupportedVersions() {
		if !slices.Contains(cni.SupportedVersions, v) {
			continue
		}
		if over, _ := version.GreaterThan(v, convertedVersionCap); over {
			continue
		}
		if higher, _ := version.GreaterThan(v, best); best == "" || higher {
			best = v
		}
	}
	if best == "" {
		return "", fmt.Errorf("%s speaks no CNI version kuma-cni does (it speaks %v)", pluginType, info.SupportedVersions())
	}
	in.log.Info("a network configuration without cniVersion is converted at the highest version its plugin speaks",
		"plugin", pluginType, "version", best, "speaks", info.SupportedVersions())
	return best, nil
}

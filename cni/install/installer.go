package install

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/cni/conflist"
)

// Installer installs kuma-cni on this node and keeps it installed; see Run.
type Installer struct {
	cfg *Config
	log *slog.Logger
	bin *binary
	// kubeconfig is the mounted path of kuma-cni's kubeconfig.
	kubeconfig string
	entry      cni.NetConf
	// standalone is kuma-cni's own network configuration, in standalone mode only.
	standalone *standalone
	// notReady is why kuma-cni is not installed, nil when it is; read by ServeHTTP.
	notReady atomic.Pointer[string]
	// installed is set once kuma-cni was first installed: a write after it is a heal.
	installed bool
	// passes counts Run's passes; see Passes.
	passes  atomic.Uint64
	metrics *metrics
	// client reaches the API server, made when first needed.
	client kubernetes.Interface
}

// New checks what the configuration names exists, and prepares an installer.
func New(cfg *Config, log *slog.Logger) (*Installer, error) {
	var errs api.FieldErrors
	for _, d := range []struct{ env, dir, accepted string }{
		{"MOUNTED_CNI_NET_DIR", cfg.MountedNetDir, "the directory where the host's CNI_NET_DIR is mounted"},
		{"MOUNTED_CNI_BIN_DIR", cfg.MountedBinDir, "the directory where the host's CNI_BIN_DIR is mounted"},
		{"SERVICE_ACCOUNT_DIR", cfg.ServiceAccountDir, "the directory with this pod's service-account token and ca.crt"},
	} {
		if fi, err := os.Stat(d.dir); err != nil || !fi.IsDir() {
			errs.Add(d.env, &api.FieldError{Value: d.dir, Problem: "is not a directory" + because(err), Accepted: d.accepted})
		}
	}
	if fi, err := os.Stat(cfg.KumaCNIBinary); err != nil || !fi.Mode().IsRegular() {
		errs.Add("KUMA_CNI_BINARY", &api.FieldError{Value: cfg.KumaCNIBinary, Problem: "is not a file" + because(err),
			Accepted: "the path of the kuma-cni binary in this image"})
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	bin, err := newBinary(cfg.KumaCNIBinary, filepath.Join(cfg.MountedBinDir, cni.PluginType))
	if err != nil {
		return nil, api.FieldErrors{{Field: "KUMA_CNI_BINARY", Value: cfg.KumaCNIBinary, Problem: "cannot be read: " + err.Error()}}
	}
	in := &Installer{
		cfg:        cfg,
		log:        log,
		bin:        bin,
		kubeconfig: filepath.Join(cfg.MountedNetDir, cfg.KubeconfigName),
		entry: cni.NetConf{
			NetConf:  types.NetConf{Type: cni.PluginType},
			LogLevel: cfg.LogLevel,
			Kubernetes: cni.Kubernetes{
				// The host's path: kuma-cni runs on the host.
				Kubeconfig:        path.Join(cfg.NetDir, cfg.KubeconfigName),
				ExcludeNamespaces: cfg.ExcludeNamespaces,
			},
		},
		metrics: newMetrics(),
	}
	if !cfg.Chained {
		if in.standalone, err = newStandalone(filepath.Join(cfg.MountedNetDir, cfg.ConfName), cfg.NetworkName, cfg.NetworkVersion, in.entry); err != nil {
			return nil, err
		}
	}
	starting := "starting"
	in.notReady.Store(&starting)
	return in, nil
}

// Registry is install-cni's metrics registry, which GET /metrics serves.
func (in *Installer) Registry() *prometheus.Registry { return in.metrics.registry }

// Passes is how many passes Run has finished, failed ones included. Each pass compares everything
// with what it should be, so a pass begun after some moment shows what the installer makes of
// the node as it was then: how tests see that the installer looked again and changed nothing,
// which no amount of waiting shows.
func (in *Installer) Passes() uint64 {
	return in.passes.Load()
}

func because(err error) string {
	if errors.Is(err, fs.ErrNotExist) {
		return " (it does not exist)"
	}
	if err != nil {
		return " (" + err.Error() + ")"
	}
	return ""
}

// install puts whatever is missing or out of date in place, in the order that keeps the runtime
// from calling a kuma-cni that cannot work: the binary, the kubeconfig, then the conflist entry,
// or in standalone mode kuma-cni's own network configuration.
func (in *Installer) install() error {
	if wrote, err := in.bin.ensure(); err != nil {
		return fmt.Errorf("copying kuma-cni to %s: %w", in.bin.dst, err)
	} else if wrote {
		in.log.Info("copied the kuma-cni binary", "file", in.bin.dst, "from", in.bin.src)
		in.healed(healBinary)
	}
	if wrote, err := ensureKubeconfig(in.cfg, in.kubeconfig); err != nil {
		return fmt.Errorf("writing kuma-cni's kubeconfig %s: %w", in.kubeconfig, err)
	} else if wrote {
		in.log.Info("wrote kuma-cni's kubeconfig", "file", in.kubeconfig)
	}
	if in.standalone != nil {
		if wrote, err := in.standalone.ensure(); err != nil {
			return err
		} else if wrote {
			in.log.Info("wrote kuma-cni's network configuration for Multus", "file", in.standalone.path)
			in.healed(healNetworkConfig)
		}
		in.setReady("kuma-cni's network configuration for Multus is " + in.standalone.path)
		return nil
	}
	name, err := conflist.Pick(in.cfg.MountedNetDir, in.cfg.ConfName)
	if err != nil {
		return err
	}
	if name == "" {
		in.setNotReady(slog.LevelInfo, in.waiting())
		return nil
	}
	res, err := conflist.InsertFile(in.cfg.MountedNetDir, name, in.entry, conflist.VersionOf(in.pluginVersion))
	if err != nil {
		return err
	}
	switch {
	case res.KeptAside != "":
		in.log.Info("converted the network configuration into a conflist with kuma-cni", "file", res.File, "original", res.KeptAside)
	case res.Written:
		in.log.Info("added kuma-cni to the network configuration", "file", res.File)
	}
	if res.Written {
		in.healed(healConflist)
	}
	in.setReady("kuma-cni is chained in " + res.File)
	return nil
}

// waiting says what is missing; with CNI_CONF_NAME set, also what the net dir holds instead,
// since a name that does not match (05-cilium.conflist where an older Cilium writes
// 05-cilium.conf) would otherwise leave the operator guessing.
func (in *Installer) waiting() string {
	if in.cfg.ConfName == "" {
		return "waiting for a network configuration in " + in.cfg.MountedNetDir
	}
	msg := "waiting for " + in.cfg.ConfName + " (CNI_CONF_NAME) in " + in.cfg.MountedNetDir
	if files, _ := conflist.Files(in.cfg.MountedNetDir); len(files) > 0 {
		msg += ", which holds " + strings.Join(files, ", ")
	}
	return msg
}

// uninstall takes kuma-cni out, the conflist entry or its own network configuration first, so
// that the runtime stops calling it before its binary goes. It goes on past errors.
func (in *Installer) uninstall() error {
	var errs []error
	if in.standalone != nil {
		if removed, err := in.standalone.remove(); err != nil {
			errs = append(errs, err)
		} else if removed {
			in.log.Info("removed kuma-cni's network configuration for Multus", "file", in.standalone.path)
		}
	} else {
		changes, err := conflist.RemoveFiles(in.cfg.MountedNetDir)
		for _, c := range changes {
			in.log.Info(c.What+" the network configuration", "file", c.File)
		}
		errs = append(errs, err)
	}
	if removed, err := in.bin.remove(); err != nil {
		errs = append(errs, err)
	} else if removed {
		in.log.Info("removed the kuma-cni binary", "file", in.bin.dst)
	}
	if err := os.Remove(in.kubeconfig); err == nil {
		in.log.Info("removed kuma-cni's kubeconfig", "file", in.kubeconfig)
	} else if !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, in.removeTemporaries())...)
}

// removeTemporaries removes the temporary files of writes cut short by a kill (SIGKILL, the OOM
// killer), which would otherwise stay on the host for good: partial binaries, kubeconfigs with a
// token.
func (in *Installer) removeTemporaries() error {
	var errs []error
	for _, dir := range []string{in.cfg.MountedNetDir, in.cfg.MountedBinDir} {
		tmp := filepath.Join(dir, conflist.TempDir)
		if _, err := os.Lstat(tmp); err != nil {
			continue
		}
		if err := os.RemoveAll(tmp); err != nil {
			errs = append(errs, err)
			continue
		}
		in.log.Info("removed the temporary files of an interrupted install-cni", "dir", tmp)
	}
	return errors.Join(errs...)
}

// healed counts a write that put back what was installed before.
func (in *Installer) healed(what string) {
	if in.installed {
		in.metrics.heals.WithLabelValues(what).Inc()
	}
}

// setReady records that kuma-cni is installed, and logs it with note when it was not.
func (in *Installer) setReady(note string) {
	in.installed = true
	in.metrics.ready.Set(1)
	if in.notReady.Swap(nil) != nil {
		in.log.Info("ready: " + note)
	}
}

// setNotReady records why kuma-cni is not installed, and logs each new reason once, so that a
// problem retried every second is not logged every second.
func (in *Installer) setNotReady(level slog.Level, reason string) {
	in.metrics.ready.Set(0)
	if old := in.notReady.Swap(&reason); old == nil || *old != reason {
		in.log.Log(context.Background(), level, "not ready: "+reason)
	}
}

package install

import (
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni"
)

// FuzzLoadConfig sets two of install-cni's variables to any values, two so that the settings that
// depend on each other (CHAINED_CNI_PLUGIN and CNI_CONF_NAME) meet: LoadConfig never panics, each
// error names one of its variables, and what it accepts is what the installer relies on.
func FuzzLoadConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, i uint8, v string, j uint8, w string) {
		if strings.ContainsRune(v+w, 0) {
			return // the environment cannot hold NUL
		}
		environ := []string{"KUBERNETES_SERVICE_HOST=10.96.0.1",
			settings[int(i)%len(settings)].env + "=" + v, settings[int(j)%len(settings)].env + "=" + w}
		cfg, err := LoadConfig(environ)
		if err != nil {
			var errs api.FieldErrors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("%q: error %#v is not a list of field errors", environ, err)
			}
			for _, e := range errs {
				if !slices.ContainsFunc(settings, func(s setting) bool { return s.env == e.Field }) {
					t.Fatalf("%q: error %q names no variable", environ, e)
				}
			}
			return
		}
		for _, dir := range []string{cfg.NetDir, cfg.MountedNetDir, cfg.BinDir, cfg.MountedBinDir, cfg.RunDir, cfg.MountedRunDir,
			cfg.ServiceAccountDir, cfg.KumaCNIBinary, cfg.TokenFile, cfg.CAFile} {
			if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
				t.Fatalf("%q: accepted the path %q", environ, dir)
			}
		}
		switch ext := filepath.Ext(cfg.ConfName); {
		case strings.ContainsRune(cfg.ConfName, '/'):
			t.Fatalf("%q: accepted the file name %q", environ, cfg.ConfName)
		case cfg.Chained && cfg.ConfName != "" && ext != ".conflist" && ext != ".conf" && ext != ".json",
			!cfg.Chained && ext != ".conf" && ext != ".json":
			t.Fatalf("%q: accepted the file name %q (chained %v)", environ, cfg.ConfName, cfg.Chained)
		}
		if _, ok := cni.ParseLogLevel(cfg.LogLevel); !ok {
			t.Fatalf("%q: accepted the log level %q", environ, cfg.LogLevel)
		}
		for _, ns := range cfg.ExcludeNamespaces {
			if len(validation.IsDNS1123Label(ns)) > 0 {
				t.Fatalf("%q: accepted the namespace %q", environ, ns)
			}
		}
		if _, _, err := net.SplitHostPort(cfg.ReadyAddr); err != nil || cfg.KubernetesServicePort == 0 || cfg.KubernetesServiceHost == "" {
			t.Fatalf("%q: accepted %+v", environ, cfg)
		}
		switch ext := filepath.Ext(cfg.KubeconfigName); {
		case cfg.KubeconfigName == "" || strings.ContainsRune(cfg.KubeconfigName, '/') || ext == ".conf" || ext == ".conflist" || ext == ".json":
			t.Fatalf("%q: accepted the kubeconfig name %q", environ, cfg.KubeconfigName)
		}
		if cfg.CheckInterval < time.Second || cfg.TokenRefresh < time.Second {
			t.Fatalf("%q: accepted the intervals %v, %v", environ, cfg.CheckInterval, cfg.TokenRefresh)
		}
		if !slices.Contains(cni.SupportedVersions, cfg.NetworkVersion) || cfg.NetworkName == "" {
			t.Fatalf("%q: accepted the standalone network %q %q", environ, cfg.NetworkName, cfg.NetworkVersion)
		}
	})
}

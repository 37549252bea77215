package install

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshinit/meshinit/api"
)

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig([]string{"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=6443"})
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		NetDir: "/etc/cni/net.d", MountedNetDir: "/host/etc/cni/net.d",
		BinDir: "/opt/cni/bin", MountedBinDir: "/host/opt/cni/bin",
		Chained: true, LogLevel: "info", ExcludeNamespaces: []string{"kube-system"},
		KumaCNIBinary: "/kuma-cni", ReadyAddr: ":9109",
		KubernetesServiceHost: "10.96.0.1", KubernetesServicePort: 6443,
		ServiceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if cfg.Level() != slog.LevelInfo {
		t.Errorf("level %v", cfg.Level())
	}
}

func TestLoadConfigValues(t *testing.T) {
	cfg, err := LoadConfig([]string{
		"KUBERNETES_SERVICE_HOST=fd00::1",
		"CNI_NET_DIR=/var/lib/rancher/k3s/agent/etc/cni/net.d/",
		"CNI_BIN_DIR=/bin",
		"CNI_CONF_NAME=10-flannel.conflist",
		"CHAINED_CNI_PLUGIN=true",
		"CNI_LOG_LEVEL=debug",
		"CNI_EXCLUDE_NAMESPACES= kube-system , kuma-system ,",
		"READY_ADDR=127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.NetDir != "/var/lib/rancher/k3s/agent/etc/cni/net.d" || cfg.BinDir != "/bin" || cfg.ConfName != "10-flannel.conflist" ||
		!cfg.Chained || cfg.Level() != slog.LevelDebug || !cmp.Equal(cfg.ExcludeNamespaces, []string{"kube-system", "kuma-system"}) {
		t.Errorf("config %+v", cfg)
	}
	cfg, err = LoadConfig([]string{"KUBERNETES_SERVICE_HOST=kubernetes.default.svc", "CNI_EXCLUDE_NAMESPACES="})
	if err != nil || cfg.ExcludeNamespaces != nil {
		t.Errorf("an empty CNI_EXCLUDE_NAMESPACES gives %v, %v", cfg.ExcludeNamespaces, err)
	}
}

func TestLoadConfigErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"CNI_NET_DIR=etc/cni/net.d", `CNI_NET_DIR: "etc/cni/net.d" is not an absolute path; accepted: an absolute directory path`},
		{"MOUNTED_CNI_NET_DIR=", `MOUNTED_CNI_NET_DIR: is empty; accepted: an absolute directory path`},
		{"CNI_BIN_DIR=bin", `CNI_BIN_DIR: "bin" is not an absolute path`},
		{"MOUNTED_CNI_BIN_DIR=./bin", `MOUNTED_CNI_BIN_DIR: "./bin" is not an absolute path`},
		{"CNI_CONF_NAME=calico.yaml", `CNI_CONF_NAME: "calico.yaml" is not a network configuration file name; accepted: a file name ending in .conflist, .conf or .json`},
		{"CNI_CONF_NAME=/etc/cni/net.d/10-calico.conflist", `CNI_CONF_NAME: "/etc/cni/net.d/10-calico.conflist" is not a network configuration file name`},
		{"CHAINED_CNI_PLUGIN=yes", `CHAINED_CNI_PLUGIN: "yes" is not a boolean; accepted: true or false`},
		{"CNI_LOG_LEVEL=trace", `CNI_LOG_LEVEL: "trace" is not a log level; accepted: debug, info, warn or error`},
		{"CNI_EXCLUDE_NAMESPACES=kube-system,Kuma_System", `CNI_EXCLUDE_NAMESPACES: "Kuma_System" in "kube-system,Kuma_System" is not a namespace name`},
		{"KUMA_CNI_BINARY=kuma-cni", `KUMA_CNI_BINARY: "kuma-cni" is not an absolute path; accepted: an absolute file path`},
		{"READY_ADDR=9109", `READY_ADDR: "9109" is not a listen address; accepted: host:port`},
		{"READY_ADDR=:99999", `READY_ADDR: ":99999" is not a listen address`},
		{"KUBERNETES_SERVICE_HOST=", `KUBERNETES_SERVICE_HOST: is not set; accepted: the API server's host name or IP address`},
		{"KUBERNETES_SERVICE_HOST=https://10.96.0.1", `KUBERNETES_SERVICE_HOST: "https://10.96.0.1" is not a host name or IP address`},
		{"KUBERNETES_SERVICE_PORT=0", `KUBERNETES_SERVICE_PORT: "0" is out of range 1-65535; accepted: a port number 1-65535`},
		{"SERVICE_ACCOUNT_DIR=secrets", `SERVICE_ACCOUNT_DIR: "secrets" is not an absolute path`},
	} {
		t.Run(tc.env, func(t *testing.T) {
			_, err := LoadConfig([]string{"KUBERNETES_SERVICE_HOST=10.96.0.1", tc.env})
			var errs api.FieldErrors
			if !errors.As(err, &errs) || len(errs) != 1 || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %s...", err, tc.want)
			}
		})
	}
}

func TestLoadConfigReportsEveryError(t *testing.T) {
	_, err := LoadConfig([]string{"CNI_LOG_LEVEL=loud", "CHAINED_CNI_PLUGIN=1"})
	for _, name := range []string{"CNI_LOG_LEVEL", "CHAINED_CNI_PLUGIN", "KUBERNETES_SERVICE_HOST"} {
		if err == nil || !strings.Contains(err.Error(), name+": ") {
			t.Errorf("%v\ndoes not name %s", err, name)
		}
	}
}

func TestLoadConfigStandaloneConfName(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{
		{[]string{"CHAINED_CNI_PLUGIN=false"}, "kuma-cni.conf"},
		{[]string{"CHAINED_CNI_PLUGIN=false", "CNI_CONF_NAME=00-kuma.json"}, "00-kuma.json"},
		{[]string{"CHAINED_CNI_PLUGIN=false", "CNI_CONF_NAME=kuma-cni.conf"}, "kuma-cni.conf"},
		// Chained, "" still means the first file by name.
		{[]string{"CHAINED_CNI_PLUGIN=true"}, ""},
	} {
		cfg, err := LoadConfig(append([]string{"KUBERNETES_SERVICE_HOST=10.96.0.1"}, tc.env...))
		if err != nil || cfg.ConfName != tc.want {
			t.Errorf("%v: ConfName %q, %v; want %q", tc.env, cfg.ConfName, err, tc.want)
		}
	}
}

func TestLoadConfigStandaloneRefusesList(t *testing.T) {
	_, err := LoadConfig([]string{"KUBERNETES_SERVICE_HOST=10.96.0.1", "CHAINED_CNI_PLUGIN=false",
		"CNI_CONF_NAME=10-calico.conflist", "CNI_LOG_LEVEL=loud"})
	var errs api.FieldErrors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("got %v\nwant two errors, CNI_LOG_LEVEL's and CNI_CONF_NAME's", err)
	}
	want := `CNI_CONF_NAME: "10-calico.conflist" is a list's name, but standalone mode writes a single plugin's configuration; ` +
		`accepted: with CHAINED_CNI_PLUGIN=false, a file name ending in .conf or .json, or empty for kuma-cni.conf`
	if !strings.Contains(err.Error(), want) {
		t.Errorf("got %v\nwant it to say %s", err, want)
	}
	// A CHAINED_CNI_PLUGIN that is not a boolean says nothing about the mode: only it is reported.
	_, err = LoadConfig([]string{"KUBERNETES_SERVICE_HOST=10.96.0.1", "CHAINED_CNI_PLUGIN=no", "CNI_CONF_NAME=10-calico.conflist"})
	if !errors.As(err, &errs) || len(errs) != 1 || errs[0].Field != "CHAINED_CNI_PLUGIN" {
		t.Errorf("got %v\nwant only CHAINED_CNI_PLUGIN's error", err)
	}
}

package install

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/cni"
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
		RunDir: "/var/run/kuma-cni", MountedRunDir: "/host/var/run/kuma-cni",
		KumaCNIBinary: "/kuma-cni", ReadyAddr: ":9109", MetricsAddr: ":9110",
		KubernetesServiceHost: "10.96.0.1", KubernetesServicePort: 6443, KubernetesServiceProtocol: "https",
		ServiceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
		TokenFile:         "/var/run/secrets/kubernetes.io/serviceaccount/token",
		CAFile:            "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
		KubeconfigName:    KubeconfigName, CheckInterval: 10 * time.Second, TokenRefresh: time.Minute, Sleep: true,
		RepairEnabled: true, NetworkName: "kuma-cni", NetworkVersion: "0.3.1",
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
		{"CNI_LOG_LEVEL=trace", `CNI_LOG_LEVEL: "trace" is not a log level; accepted: off, debug, info, warn or error`},
		{"CNI_EXCLUDE_NAMESPACES=kube-system,Kuma_System", `CNI_EXCLUDE_NAMESPACES: "Kuma_System" in "kube-system,Kuma_System" is not a namespace name`},
		{"KUMA_CNI_BINARY=kuma-cni", `KUMA_CNI_BINARY: "kuma-cni" is not an absolute path; accepted: an absolute file path`},
		{"READY_ADDR=9109", `READY_ADDR: "9109" is not a listen address; accepted: host:port`},
		{"READY_ADDR=:99999", `READY_ADDR: ":99999" is not a listen address`},
		{"KUBERNETES_SERVICE_HOST=", `KUBERNETES_SERVICE_HOST: is not set; accepted: the API server's host name or IP address`},
		{"KUBERNETES_SERVICE_HOST=https://10.96.0.1", `KUBERNETES_SERVICE_HOST: "https://10.96.0.1" is not a host name or IP address`},
		{"KUBERNETES_SERVICE_PORT=0", `KUBERNETES_SERVICE_PORT: "0" is out of range 1-65535; accepted: a port number 1-65535`},
		{"SERVICE_ACCOUNT_DIR=secrets", `SERVICE_ACCOUNT_DIR: "secrets" is not an absolute path`},
		{"MOUNTED_CNI_RUN_DIR=run", `MOUNTED_CNI_RUN_DIR: "run" is not an absolute path`},
		{"METRICS_ADDR=9110", `METRICS_ADDR: "9110" is not a listen address; accepted: host:port, such as :9109 or 127.0.0.1:9109 (port 0 picks a free port), or empty for no metrics`},
		{"KUBERNETES_SERVICE_PROTOCOL=grpc", `KUBERNETES_SERVICE_PROTOCOL: "grpc" is not a protocol the API server speaks; accepted: https or http`},
		{"KUBE_CA_FILE=ca.crt", `KUBE_CA_FILE: "ca.crt" is not an absolute path`},
		{"KUBECFG_FILE_NAME=kubeconfig.conf", `KUBECFG_FILE_NAME: "kubeconfig.conf" ends in .conf, and runtimes would load it as a network configuration`},
		{"KUBECFG_FILE_NAME=.kubeconfig", `KUBECFG_FILE_NAME: ".kubeconfig" is a hidden file's name`},
		{"CFGCHECK_INTERVAL=0", `CFGCHECK_INTERVAL: "0" is not a number of seconds; accepted: a whole number of seconds, 1 or more`},
		{"REFRESH_SA_TOKEN_INTERVAL=1m", `REFRESH_SA_TOKEN_INTERVAL: "1m" is not a number of seconds`},
		{"SLEEP=no", `SLEEP: "no" is not a boolean`},
		{"CNI_NETWORK_CONFIG={", `CNI_NETWORK_CONFIG: "{" is not a network configuration: unexpected end of JSON input`},
		{`CNI_NETWORK_CONFIG={"type":"calico"}`, `CNI_NETWORK_CONFIG: "{\"type\":\"calico\"}" configures the plugin "calico", not kuma-cni`},
		{`CNI_NETWORK_CONFIG={"cniVersion":"9.9.9"}`, `CNI_NETWORK_CONFIG: "{\"cniVersion\":\"9.9.9\"}" declares cniVersion "9.9.9", which kuma-cni does not speak`},
		{`CNI_NETWORK_CONFIG={"log_level":"loud"}`, `CNI_NETWORK_CONFIG: "{\"log_level\":\"loud\"}" has log_level "loud", which is not one of off, debug, info, warn or error`},
		{"POD_NAME=Install_CNI", `POD_NAME: "Install_CNI" is not an object name`},
		{"NODE_NAME=node one", `NODE_NAME: "node one" is not an object name`},
		{"CNI_REPAIR_ENABLED=on", `CNI_REPAIR_ENABLED: "on" is not a boolean`},
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

// TestKumasEnvironment: install-cni takes the environment of Kuma's CNI DaemonSet, as Kuma's chart
// writes it, and the variables Kuma's install-cni reads besides.
func TestKumasEnvironment(t *testing.T) {
	cfg, err := LoadConfig([]string{
		"KUBERNETES_SERVICE_HOST=10.96.0.1", "KUBERNETES_SERVICE_PORT=443",
		"CNI_CONF_NAME=10-calico.conflist", "CNI_NET_DIR=/etc/cni/net.d", "CHAINED_CNI_PLUGIN=true",
		`CNI_NETWORK_CONFIG={"cniVersion": "0.3.1", "name": "kuma-cni", "type": "kuma-cni", "log_level": "off",
  "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__", "cni_bin_dir": "/opt/cni/bin", "exclude_namespaces": ["kube-system", "kuma-system"]}}`,
		"CFGCHECK_INTERVAL=2", "KUBECFG_FILE_NAME=ZZZ-kuma-cni-kubeconfig",
		"KUBE_CA_FILE=/secrets/ca.crt", "KUBE_SERVICE_ACCOUNT_TOKEN_PATH=/secrets/token",
		"KUBERNETES_SERVICE_PROTOCOL=https", "SLEEP=false", "REFRESH_SA_TOKEN_INTERVAL=30",
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "off" || cfg.Level() != cni.LevelOff {
		t.Errorf("log level %q (%v); want CNI_NETWORK_CONFIG's off, CNI_LOG_LEVEL being unset", cfg.LogLevel, cfg.Level())
	}
	if !cmp.Equal(cfg.ExcludeNamespaces, []string{"kube-system", "kuma-system"}) {
		t.Errorf("excluded namespaces %v", cfg.ExcludeNamespaces)
	}
	if cfg.CheckInterval != 2*time.Second || cfg.TokenRefresh != 30*time.Second || cfg.Sleep || cfg.KubeconfigName != "ZZZ-kuma-cni-kubeconfig" ||
		cfg.CAFile != "/secrets/ca.crt" || cfg.TokenFile != "/secrets/token" || cfg.apiServer() != "https://10.96.0.1:443" {
		t.Errorf("config %+v", cfg)
	}
	// CNI_LOG_LEVEL, when set, wins over the network configuration's.
	cfg, err = LoadConfig([]string{"KUBERNETES_SERVICE_HOST=10.96.0.1", "CNI_LOG_LEVEL=debug", `CNI_NETWORK_CONFIG={"log_level":"info"}`})
	if err != nil || cfg.LogLevel != "debug" {
		t.Errorf("log level %q, %v; want CNI_LOG_LEVEL's debug", cfg.LogLevel, err)
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

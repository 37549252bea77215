package install

import (
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshinit/meshinit/api"
)

// Config is install-cni's configuration, read from its environment by LoadConfig.
type Config struct {
	// NetDir and BinDir are the host's CNI directories, where the runtime and kuma-cni see the
	// files; MountedNetDir and MountedBinDir are where they are mounted in this container.
	NetDir, MountedNetDir string
	BinDir, MountedBinDir string
	// ConfName is the network configuration file to chain kuma-cni into; "" is the one the
	// runtime uses, the first by name. In standalone mode it is the file kuma-cni's own
	// configuration is written to, StandaloneConfName unless set.
	ConfName string
	// Chained puts kuma-cni into the network configuration. Standalone (Multus) leaves it alone
	// and writes kuma-cni's own configuration into Multus's conf dir, where Multus finds it by the
	// name of the kuma-cni NetworkAttachmentDefinition.
	Chained bool
	// LogLevel is debug, info, warn or error, for install-cni and for kuma-cni.
	LogLevel string
	// ExcludeNamespaces are namespaces whose pods kuma-cni leaves alone.
	ExcludeNamespaces []string
	// KumaCNIBinary is the plugin binary in this image, copied to the host.
	KumaCNIBinary string
	// ReadyAddr serves GET /ready.
	ReadyAddr string
	// KubernetesServiceHost and KubernetesServicePort are the API server, for kuma-cni's kubeconfig.
	KubernetesServiceHost string
	KubernetesServicePort uint16
	// ServiceAccountDir holds this pod's token and ca.crt, which kuma-cni's kubeconfig carries.
	ServiceAccountDir string
}

// Level is LogLevel for log/slog.
func (c *Config) Level() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel)) // validated by LoadConfig
	return l
}

// Accepted forms of the settings.
const (
	formDir        = "an absolute directory path, such as /etc/cni/net.d"
	formFile       = "an absolute file path, such as /kuma-cni"
	formConfName   = "a file name ending in .conflist, .conf or .json, such as 10-calico.conflist, or empty for the first file by name"
	formLogLevel   = "debug, info, warn or error"
	formNamespaces = "comma-separated namespace names, such as kube-system,kuma-system"
	formAddr       = "host:port, such as :9109 or 127.0.0.1:9109 (port 0 picks a free port)"
	formHost       = "the API server's host name or IP address (Kubernetes sets it in every pod)"
)

// formStandaloneConfName is CNI_CONF_NAME's form in standalone mode, which writes one plugin's
// configuration: runtimes and Multus read a .conflist as a list.
const formStandaloneConfName = "with CHAINED_CNI_PLUGIN=false, a file name ending in .conf or .json, or empty for " + StandaloneConfName

// setting is one environment variable.
type setting struct {
	env, def string
	set      func(c *Config, value string) error
}

var settings = []setting{
	{"CNI_NET_DIR", "/etc/cni/net.d", dir(func(c *Config) *string { return &c.NetDir })},
	{"MOUNTED_CNI_NET_DIR", "/host/etc/cni/net.d", dir(func(c *Config) *string { return &c.MountedNetDir })},
	{"CNI_BIN_DIR", "/opt/cni/bin", dir(func(c *Config) *string { return &c.BinDir })},
	{"MOUNTED_CNI_BIN_DIR", "/host/opt/cni/bin", dir(func(c *Config) *string { return &c.MountedBinDir })},
	{"CNI_CONF_NAME", "", func(c *Config, v string) error {
		if v != "" && (strings.ContainsRune(v, '/') || !slices.Contains([]string{".conflist", ".conf", ".json"}, filepath.Ext(v))) {
			return fail(v, "is not a network configuration file name", formConfName)
		}
		c.ConfName = v
		return nil
	}},
	{"CHAINED_CNI_PLUGIN", "true", func(c *Config, v string) (err error) {
		c.Chained, err = api.ParseStrictBool(v)
		return err
	}},
	{"CNI_LOG_LEVEL", "info", func(c *Config, v string) error {
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, v) {
			return fail(v, "is not a log level", formLogLevel)
		}
		c.LogLevel = v
		return nil
	}},
	{"CNI_EXCLUDE_NAMESPACES", "kube-system", func(c *Config, v string) error {
		c.ExcludeNamespaces = nil
		for _, ns := range strings.Split(v, ",") {
			if ns = strings.TrimSpace(ns); ns == "" {
				continue
			}
			if len(validation.IsDNS1123Label(ns)) > 0 {
				return &api.FieldError{Value: v, Token: ns, Problem: "is not a namespace name", Accepted: formNamespaces}
			}
			c.ExcludeNamespaces = append(c.ExcludeNamespaces, ns)
		}
		return nil
	}},
	{"KUMA_CNI_BINARY", "/kuma-cni", func(c *Config, v string) error {
		if !filepath.IsAbs(v) {
			return fail(v, "is not an absolute path", formFile)
		}
		c.KumaCNIBinary = filepath.Clean(v)
		return nil
	}},
	{"READY_ADDR", ":9109", func(c *Config, v string) error {
		_, port, err := net.SplitHostPort(v)
		if err == nil {
			_, err = api.ParseOptionalPort(port)
		}
		if err != nil {
			return fail(v, "is not a listen address", formAddr)
		}
		c.ReadyAddr = v
		return nil
	}},
	{"KUBERNETES_SERVICE_HOST", "", func(c *Config, v string) error {
		switch {
		case v == "":
			return fail(v, "is not set", formHost)
		case net.ParseIP(v) == nil && len(validation.IsDNS1123Subdomain(v)) > 0:
			return fail(v, "is not a host name or IP address", formHost)
		}
		c.KubernetesServiceHost = v
		return nil
	}},
	{"KUBERNETES_SERVICE_PORT", "443", func(c *Config, v string) (err error) {
		c.KubernetesServicePort, err = api.ParsePort(v)
		return err
	}},
	{"SERVICE_ACCOUNT_DIR", "/var/run/secrets/kubernetes.io/serviceaccount", dir(func(c *Config) *string { return &c.ServiceAccountDir })},
}

// LoadConfig reads the configuration from environ ("NAME=value" entries, as os.Environ returns
// them). Every bad value is reported at once, each naming its variable.
func LoadConfig(environ []string) (*Config, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if name, value, ok := strings.Cut(kv, "="); ok {
			env[name] = value
		}
	}
	c := &Config{}
	var errs api.FieldErrors
	failed := map[string]bool{}
	for _, s := range settings {
		value, ok := env[s.env]
		if !ok {
			value = s.def
		}
		failed[s.env] = errs.Add(s.env, s.set(c, value))
	}
	// The file name's check depends on the mode, so it waits until both are read.
	if !failed["CHAINED_CNI_PLUGIN"] && !failed["CNI_CONF_NAME"] {
		errs.Add("CNI_CONF_NAME", c.standaloneConfName())
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// standaloneConfName names, in standalone mode, the file kuma-cni's own configuration goes to.
func (c *Config) standaloneConfName() error {
	switch {
	case c.Chained:
	case c.ConfName == "":
		c.ConfName = StandaloneConfName
	case filepath.Ext(c.ConfName) == ".conflist":
		return fail(c.ConfName, "is a list's name, but standalone mode writes a single plugin's configuration", formStandaloneConfName)
	}
	return nil
}

func dir(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch {
		case v == "":
			return fail(v, "is empty", formDir)
		case !filepath.IsAbs(v):
			return fail(v, "is not an absolute path", formDir)
		}
		*field(c) = filepath.Clean(v)
		return nil
	}
}

func fail(value, problem, accepted string) error {
	return &api.FieldError{Value: value, Problem: problem, Accepted: accepted}
}

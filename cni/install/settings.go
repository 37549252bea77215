package install

import (
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshinit/meshinit/api"
	declared "github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/cni"
)

// Config is install-cni's configuration, read from its environment by LoadConfig.
type Config struct {
	// NetDir and BinDir are the host's CNI directories, where the runtime and kuma-cni see the
	// files; MountedNetDir and MountedBinDir are where they are mounted in this container.
	NetDir, MountedNetDir string
	BinDir, MountedBinDir string
	// RunDir is the host's directory of install-cni's socket, where kuma-cni sends its log lines
	// (package relay); MountedRunDir is where it is mounted here.
	RunDir, MountedRunDir string
	// ConfName is the network configuration file to chain kuma-cni into; "" is the one the
	// runtime uses, the first by name. In standalone mode it is the file kuma-cni's own
	// configuration is written to, StandaloneConfName unless set.
	ConfName string
	// Chained puts kuma-cni into the network configuration. Standalone (Multus) leaves it alone
	// and writes kuma-cni's own configuration into Multus's conf dir, where Multus finds it by the
	// name of the kuma-cni NetworkAttachmentDefinition.
	Chained bool
	// LogLevel is one of cni.FormLogLevel, for install-cni and for kuma-cni.
	LogLevel string
	// ExcludeNamespaces are namespaces whose pods kuma-cni leaves alone.
	ExcludeNamespaces []string
	// KumaCNIBinary is the plugin binary in this image, copied to the host.
	KumaCNIBinary string
	// ReadyAddr serves GET /ready; MetricsAddr serves GET /metrics, "" for none.
	ReadyAddr, MetricsAddr string
	// KubernetesServiceHost, KubernetesServicePort and KubernetesServiceProtocol are the API
	// server, for kuma-cni's kubeconfig and install-cni's own calls.
	KubernetesServiceHost     string
	KubernetesServicePort     uint16
	KubernetesServiceProtocol string
	// ServiceAccountDir holds this pod's token and ca.crt, which kuma-cni's kubeconfig carries;
	// TokenFile and CAFile are those files, there unless Kuma's variables name others.
	ServiceAccountDir, TokenFile, CAFile string
	// KubeconfigName is kuma-cni's kubeconfig's file in the net dir.
	KubeconfigName string
	// CheckInterval is how often everything is compared with what it should be besides the file
	// watches, which see every change on local file systems; TokenRefresh how often the token is
	// read again besides its directory's watch. Each pass does both.
	CheckInterval, TokenRefresh time.Duration
	// Sleep false installs once and exits, leaving kuma-cni installed: nothing keeps it in place.
	Sleep bool
	// PodName and PodNamespace are this pod's, to find its DaemonSet when it stops: kuma-cni stays
	// on the node unless the DaemonSet is going (see Run). Without them it always leaves.
	PodName, PodNamespace string
	// NodeName is this node's, whose pods the repair looks after; RepairEnabled turns it on.
	NodeName      string
	RepairEnabled bool
	// NetworkName and NetworkVersion are the name and cniVersion of the standalone network
	// configuration (Kuma's CNI_NETWORK_CONFIG may set them).
	NetworkName, NetworkVersion string
}

// Level is LogLevel for log/slog.
func (c *Config) Level() slog.Level {
	l, _ := cni.ParseLogLevel(c.LogLevel) // validated by LoadConfig
	return l
}

// Accepted forms of the settings.
const (
	formDir            = "an absolute directory path, such as /etc/cni/net.d"
	formFile           = "an absolute file path, such as /kuma-cni"
	formConfName       = "a file name ending in .conflist, .conf or .json, such as 10-calico.conflist, or empty for the first file by name"
	formNamespaces     = "comma-separated namespace names, such as kube-system,kuma-system"
	formAddr           = "host:port, such as :9109 or 127.0.0.1:9109 (port 0 picks a free port)"
	formMetricsAddr    = formAddr + ", or empty for no metrics"
	formHost           = "the API server's host name or IP address (Kubernetes sets it in every pod)"
	formProtocol       = "https or http"
	formSeconds        = "a whole number of seconds, 1 or more"
	formKubeconfigName = "a file name such as ZZZ-kuma-cni-kubeconfig, not ending in .conflist, .conf or .json (runtimes would load it as a network configuration)"
	formNetworkConfig  = `kuma-cni's network configuration as JSON, such as Kuma's chart writes: {"cniVersion":"0.3.1","name":"kuma-cni","type":"kuma-cni","log_level":"info","kubernetes":{"exclude_namespaces":["kube-system"]}}`
	formPodName        = "a pod name (lowercase letters, digits, '-' and '.'), or empty"
	formNodeName       = "a node name (lowercase letters, digits, '-' and '.'), or empty"
)

// formStandaloneConfName is CNI_CONF_NAME's form in standalone mode, which writes one plugin's
// configuration: runtimes and Multus read a .conflist as a list.
const formStandaloneConfName = "with CHAINED_CNI_PLUGIN=false, a file name ending in .conf or .json, or empty for " + StandaloneConfName

// setting is one environment variable.
type setting struct {
	env, def string
	set      func(c *Config, value string) error
}

// settings are install-cni's variables: meshinit's, and Kuma's install-cni's (CFGCHECK_INTERVAL,
// CNI_NETWORK_CONFIG, KUBECFG_FILE_NAME, KUBE_CA_FILE, KUBE_SERVICE_ACCOUNT_TOKEN_PATH,
// KUBERNETES_SERVICE_PROTOCOL, SLEEP, REFRESH_SA_TOKEN_INTERVAL), so that a DaemonSet written for
// Kuma's runs meshinit's unchanged.
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
		if _, ok := cni.ParseLogLevel(v); !ok {
			return fail(v, "is not a log level", cni.FormLogLevel)
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
	{"READY_ADDR", ":9109", addr(func(c *Config) *string { return &c.ReadyAddr }, false)},
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
	{"CNI_RUN_DIR", "/var/run/kuma-cni", dir(func(c *Config) *string { return &c.RunDir })},
	{"MOUNTED_CNI_RUN_DIR", "/host/var/run/kuma-cni", dir(func(c *Config) *string { return &c.MountedRunDir })},
	{"METRICS_ADDR", ":9110", addr(func(c *Config) *string { return &c.MetricsAddr }, true)},
	{"KUBERNETES_SERVICE_PROTOCOL", "https", func(c *Config, v string) error {
		if v != "https" && v != "http" {
			return fail(v, "is not a protocol the API server speaks", formProtocol)
		}
		c.KubernetesServiceProtocol = v
		return nil
	}},
	// Kuma's names for the two files; empty: those of SERVICE_ACCOUNT_DIR.
	{"KUBE_SERVICE_ACCOUNT_TOKEN_PATH", "", file(func(c *Config) *string { return &c.TokenFile })},
	{"KUBE_CA_FILE", "", file(func(c *Config) *string { return &c.CAFile })},
	{"KUBECFG_FILE_NAME", KubeconfigName, func(c *Config, v string) error {
		switch {
		case v == "" || strings.ContainsRune(v, '/') || v == "." || v == "..":
			return fail(v, "is not a file name", formKubeconfigName)
		case strings.HasPrefix(v, "."):
			return fail(v, "is a hidden file's name, which install-cni keeps for its temporary files", formKubeconfigName)
		case slices.Contains([]string{".conflist", ".conf", ".json"}, filepath.Ext(v)):
			return fail(v, "ends in "+filepath.Ext(v)+", and runtimes would load it as a network configuration", formKubeconfigName)
		}
		c.KubeconfigName = v
		return nil
	}},
	{"CFGCHECK_INTERVAL", "10", seconds(func(c *Config) *time.Duration { return &c.CheckInterval })},
	{"REFRESH_SA_TOKEN_INTERVAL", "60", seconds(func(c *Config) *time.Duration { return &c.TokenRefresh })},
	{"SLEEP", "true", func(c *Config, v string) (err error) {
		c.Sleep, err = api.ParseStrictBool(v)
		return err
	}},
	{"CNI_NETWORK_CONFIG", "", func(c *Config, v string) error {
		// Read after the loop, over the others: see networkConfig.
		return nil
	}},
	{"POD_NAME", "", name(func(c *Config) *string { return &c.PodName }, formPodName)},
	{"POD_NAMESPACE", "", func(c *Config, v string) error {
		if v != "" && len(validation.IsDNS1123Label(v)) > 0 {
			return fail(v, "is not a namespace name", "a namespace name such as kube-system, or empty")
		}
		c.PodNamespace = v
		return nil
	}},
	{"NODE_NAME", "", name(func(c *Config) *string { return &c.NodeName }, formNodeName)},
	{declared.CNIRepairEnabled.InstallCNIEnv, declared.CNIRepairEnabled.Default, func(c *Config, v string) (err error) {
		c.RepairEnabled, err = api.ParseStrictBool(v)
		return err
	}},
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
	c := &Config{NetworkName: cni.NetworkName, NetworkVersion: standaloneVersion}
	var errs api.FieldErrors
	failed := map[string]bool{}
	for _, s := range settings {
		value, ok := env[s.env]
		if !ok {
			value = s.def
		}
		failed[s.env] = errs.Add(s.env, s.set(c, value))
	}
	// What depends on more than one variable waits until all are read.
	if !failed["CHAINED_CNI_PLUGIN"] && !failed["CNI_CONF_NAME"] {
		errs.Add("CNI_CONF_NAME", c.standaloneConfName())
	}
	_, levelGiven := env["CNI_LOG_LEVEL"]
	errs.Add("CNI_NETWORK_CONFIG", c.networkConfig(env["CNI_NETWORK_CONFIG"], levelGiven))
	if c.TokenFile == "" {
		c.TokenFile = filepath.Join(c.ServiceAccountDir, "token")
	}
	if c.CAFile == "" {
		c.CAFile = filepath.Join(c.ServiceAccountDir, "ca.crt")
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// networkConfig reads Kuma's CNI_NETWORK_CONFIG, the configuration Kuma's install-cni writes for
// kuma-cni with its placeholders (__KUBECONFIG_FILEPATH__, __SERVICEACCOUNT_TOKEN__) filled in.
// install-cni writes kuma-cni's configuration itself, so only what it can mean is taken: its
// excluded namespaces, added to CNI_EXCLUDE_NAMESPACES; its log level, unless CNI_LOG_LEVEL is
// set; its name and cniVersion, for the standalone file. The kubeconfig is install-cni's own.
func (c *Config) networkConfig(v string, levelGiven bool) error {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	var nc cni.NetConf
	if err := json.Unmarshal([]byte(v), &nc); err != nil {
		return fail(v, "is not a network configuration: "+err.Error(), formNetworkConfig)
	}
	switch {
	case nc.Type != "" && nc.Type != cni.PluginType:
		return fail(v, "configures the plugin "+strconv.Quote(nc.Type)+", not kuma-cni", formNetworkConfig)
	case nc.CNIVersion != "" && !slices.Contains(cni.SupportedVersions, nc.CNIVersion):
		return fail(v, "declares cniVersion "+strconv.Quote(nc.CNIVersion)+", which kuma-cni does not speak", formNetworkConfig)
	}
	if nc.LogLevel != "" {
		if _, ok := cni.ParseLogLevel(nc.LogLevel); !ok {
			return fail(v, "has log_level "+strconv.Quote(nc.LogLevel)+", which is not one of "+cni.FormLogLevel, formNetworkConfig)
		}
		if !levelGiven {
			c.LogLevel = nc.LogLevel
		}
	}
	for _, ns := range nc.Kubernetes.ExcludeNamespaces {
		if len(validation.IsDNS1123Label(ns)) > 0 {
			return &api.FieldError{Value: v, Token: ns, Problem: "is not a namespace name", Accepted: formNetworkConfig}
		}
		if !slices.Contains(c.ExcludeNamespaces, ns) {
			c.ExcludeNamespaces = append(c.ExcludeNamespaces, ns)
		}
	}
	if nc.Name != "" {
		c.NetworkName = nc.Name
	}
	if nc.CNIVersion != "" {
		c.NetworkVersion = nc.CNIVersion
	}
	return nil
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

// file reads an optional absolute file path.
func file(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" {
			return nil
		}
		if !filepath.IsAbs(v) {
			return fail(v, "is not an absolute path", "an absolute file path, such as /var/run/secrets/kubernetes.io/serviceaccount/token, or empty")
		}
		*field(c) = filepath.Clean(v)
		return nil
	}
}

// addr reads a listen address; optional ones may be empty.
func addr(field func(*Config) *string, optional bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" && optional {
			*field(c) = ""
			return nil
		}
		_, port, err := net.SplitHostPort(v)
		if err == nil {
			_, err = api.ParseOptionalPort(port)
		}
		if err != nil {
			form := formAddr
			if optional {
				form = formMetricsAddr
			}
			return fail(v, "is not a listen address", form)
		}
		*field(c) = v
		return nil
	}
}

// seconds reads a positive whole number of seconds, as Kuma's intervals are given.
func seconds(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fail(v, "is not a number of seconds", formSeconds)
		}
		*field(c) = time.Duration(n) * time.Second
		return nil
	}
}

// name reads an optional object name.
func name(field func(*Config) *string, form string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" && len(validation.IsDNS1123Subdomain(v)) > 0 {
			return fail(v, "is not an object name", form)
		}
		*field(c) = v
		return nil
	}
}

func fail(value, problem, accepted string) error {
	return &api.FieldError{Value: value, Problem: problem, Accepted: accepted}
}

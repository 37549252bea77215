package cni

import (
	"log/slog"
	"math"

	"github.com/containernetworking/cni/pkg/types"
)

// PluginType is kuma-cni's type in a conflist, and the name of its binary.
const PluginType = "kuma-cni"

// NetworkName is the network Multus attaches kuma-cni as: the NetworkAttachmentDefinition that
// injected pods list in k8s.v1.cni.cncf.io/networks, and the name in the network configuration
// install-cni writes for Multus, which finds that file by it when the definition carries none.
const NetworkName = "kuma-cni"

// SupportedVersions are the CNI spec versions kuma-cni speaks: every one a runtime's libcni may
// hand it. install-cni chains kuma-cni only into a configuration declaring these.
var SupportedVersions = []string{"0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// NetConf is kuma-cni's network configuration: its entry in a chained conflist (name and
// cniVersion come from the list), or, for Multus, a network configuration of its own. Kuma's
// install-cni writes the same keys, so kuma-cni reads the configurations it left.
type NetConf struct {
	types.NetConf
	// LogLevel is one of FormLogLevel; CNI_LOG_LEVEL in the plugin's environment wins.
	LogLevel string `json:"log_level,omitempty"`
	// LogSocket is install-cni's socket (package relay), where kuma-cni's log lines and results go
	// besides its stderr; empty for stderr alone.
	LogSocket  string     `json:"log_socket,omitempty"`
	Kubernetes Kubernetes `json:"kubernetes"`
}

// Kubernetes says how the plugin reaches the API server and which pods it leaves alone.
type Kubernetes struct {
	// Kubeconfig is the host path of the kubeconfig install-cni writes for the plugin.
	Kubeconfig string `json:"kubeconfig"`
	// ExcludeNamespaces are namespaces whose pods the plugin never looks at.
	ExcludeNamespaces []string `json:"exclude_namespaces,omitempty"`
	// CNIBinDir is where Kuma's install-cni put its binaries; it writes it into the entries it
	// chains. kuma-cni needs no other binary, so it reads and ignores it.
	CNIBinDir string `json:"cni_bin_dir,omitempty"`
}

// FormLogLevel is the accepted form of log_level and CNI_LOG_LEVEL: Kuma's levels (off, info,
// debug) and slog's.
const FormLogLevel = "off, debug, info, warn or error"

// LevelOff is the level of "off": above every record's, so nothing is logged.
const LevelOff = slog.Level(math.MaxInt)

// ParseLogLevel reads one of FormLogLevel.
func ParseLogLevel(text string) (slog.Level, bool) {
	switch text {
	case "off":
		return LevelOff, true
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

package cni

import "github.com/containernetworking/cni/pkg/types"

// PluginType is kuma-cni's type in a conflist, and the name of its binary.
const PluginType = "kuma-cni"

// NetConf is kuma-cni's network configuration: its entry in a chained conflist (name and
// cniVersion come from the list), or the config of a Multus NetworkAttachmentDefinition.
type NetConf struct {
	types.NetConf
	// LogLevel is debug, info, warn or error; CNI_LOG_LEVEL in the plugin's environment wins.
	LogLevel   string     `json:"log_level,omitempty"`
	Kubernetes Kubernetes `json:"kubernetes"`
}

// Kubernetes says how the plugin reaches the API server and which pods it leaves alone.
type Kubernetes struct {
	// Kubeconfig is the host path of the kubeconfig install-cni writes for the plugin.
	Kubeconfig string `json:"kubeconfig"`
	// ExcludeNamespaces are namespaces whose pods the plugin never looks at.
	ExcludeNamespaces []string `json:"exclude_namespaces,omitempty"`
}

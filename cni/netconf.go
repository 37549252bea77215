package cni

import "github.com/containernetworking/cni/pkg/types"

// PluginType is kuma-cni's type in a conflist, and the name of its binary.
const PluginType = "kuma-cni"

// NetworkName is the network Multus attaches kuma-cni as: the NetworkAttachmentDefinition that
// injected pods list in k8s.v1.cni.cncf.io/networks, and the name in the network configuration
// install-cni writes for Multus, which finds that file by it when the definition carries none.
const NetworkName = "kuma-cni"

// NetConf is kuma-cni's network configuration: its entry in a chained conflist (name and
// cniVersion come from the list), or, for Multus, a network configuration of its own.
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

// Package config holds the cluster-wide defaults of the injector: the KUMA_RUNTIME_* environment,
// read once at start into one struct and validated there, so that a bad value stops the injector
// with a message naming the variable instead of surfacing later on some pod.
package config

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
)

// Config is the injector's cluster-wide configuration. Load fills it from the environment; the
// bindings in settings.go say which setting's variable sets which field.
type Config struct {
	// SystemNamespace is the injector's own namespace, whose pods are never injected.
	SystemNamespace string
	// ControlPlaneURL is where sidecars reach the control plane.
	ControlPlaneURL     string
	AdmissionServer     AdmissionServer
	Injector            Injector
	SidecarTraffic      SidecarTraffic
	Exceptions          Exceptions
	NodeTaintController NodeTaintController

	// given holds the settings the environment set.
	given map[*settings.Setting]bool
}

// FromEnvironment reports whether the environment set a setting, rather than the setting having
// its built-in default: logs say which source each value came from.
func (c *Config) FromEnvironment(s *settings.Setting) bool { return c.given[s] }

// AdmissionServer is the webhook's HTTPS server.
type AdmissionServer struct {
	Port uint16
	// CertDir holds tls.crt and tls.key.
	CertDir string
}

// Injector shapes the containers added to pods.
type Injector struct {
	// CNIEnabled means the CNI plugin installs the rules, so no kuma-init is injected.
	CNIEnabled       bool
	SidecarContainer SidecarContainer
	InitContainer    InitContainer
	BuiltinDNS       BuiltinDNS
	// ApplicationProbeProxyPort serves the app's rewritten probes on the sidecar; 0 is off.
	ApplicationProbeProxyPort uint16
	// TransparentProxyConfigMap is the cluster's ConfigMap in Kuma's format, in SystemNamespace.
	TransparentProxyConfigMap string
	// ContainerPatches are applied to every pod's containers, before the pod's own.
	ContainerPatches []string
	// CACertFile holds the control plane's CA; ReadCACert reads it into CACert, the PEM that
	// kuma-dp checks the control plane's certificate with. Both are empty when none is set.
	CACertFile, CACert string
	// TransparentProxyBackend is how kuma-init and kuma-cni install the rules.
	TransparentProxyBackend api.Backend
}

// SidecarContainer is the kuma-sidecar container.
type SidecarContainer struct {
	Image string
	// KumaDPVersion is the version of kuma-dp in Image: the setting's, or Image's tag.
	KumaDPVersion        Version
	UID, GID             int64
	RedirectPortInbound  uint16
	RedirectPortOutbound uint16
	IPFamilyMode         api.IPFamilyMode
	DrainTime            time.Duration
	EnvVars              api.EnvVars
	Resources            Resources
}

// Resources are a container's requests and limits.
type Resources struct {
	RequestsCPU, RequestsMemory resource.Quantity
	LimitsCPU, LimitsMemory     resource.Quantity
}

// InitContainer is the kuma-init container.
type InitContainer struct {
	Image string
	// Privileged runs it fully privileged, for platforms that do not grant capabilities alone.
	Privileged bool
	// KumactlBefore211 says that Image is Kuma's own kuma-init of a release before 2.11: its
	// kumactl reads the document's path from --config-file, and its validator reads no document.
	KumactlBefore211 bool
}

// BuiltinDNS is the sidecar's DNS server that DNS queries are redirected to.
type BuiltinDNS struct {
	Enabled bool
	Port    uint16
}

// SidecarTraffic holds the default exclusions, each replaced by its pod annotation.
type SidecarTraffic struct {
	ExcludeInboundPorts  api.PortRanges
	ExcludeOutboundPorts api.PortRanges
	ExcludeInboundIPs    api.CIDRs
	ExcludeOutboundIPs   api.CIDRs
}

// Exceptions are pods never injected.
type Exceptions struct {
	// Labels maps a label key to a value, or to "*" for any value.
	Labels map[string]string
}

// NodeTaintController keeps pods off nodes whose CNI pod is not ready.
type NodeTaintController struct {
	Enabled      bool
	CNIApp       string
	CNINamespace string
	// Nodes are the nodes the CNI DaemonSet runs on; others are never tainted.
	Nodes labels.Selector
	// TaintKey is the taint's key; empty is the setting's default (Kuma's NodeReadiness).
	TaintKey string
}

// Key is the taint's key.
func (c NodeTaintController) Key() string {
	if c.TaintKey == "" {
		return settings.NodeTaintControllerTaintKey.Default
	}
	return c.TaintKey
}

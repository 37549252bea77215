package config

import (
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshinit/meshinit/api"
)

// Setting is one environment variable of the configuration. Settings is the single source for
// loading, defaults, validation messages and the README's table.
type Setting struct {
	Env string
	// Aliases are Kuma's own spellings, accepted so that existing deployments work unchanged.
	Aliases     []string
	Default     string
	Form        string
	Description string
	set         func(c *Config, value string) error
}

// Settings lists every variable the injector reads.
var Settings = []Setting{
	{Env: "KUMA_RUNTIME_KUBERNETES_SYSTEM_NAMESPACE", Aliases: []string{"KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE"},
		Default: "kuma-system", Form: FormNamespace, Description: "The injector's own namespace; its pods are never injected.",
		set: bind(parseNamespace, func(c *Config) *string { return &c.SystemNamespace })},
	{Env: "KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL", Default: "https://kuma-control-plane.kuma-system:5678", Form: FormURL,
		Description: "Where sidecars reach the control plane (KUMA_CONTROL_PLANE_URL of kuma-dp).",
		set:         bind(parseURL, func(c *Config) *string { return &c.ControlPlaneURL })},
	{Env: "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT", Default: "5443", Form: api.FormPort,
		Description: "Port of the webhook's HTTPS server.",
		set:         bind(api.ParsePort, func(c *Config) *uint16 { return &c.AdmissionServer.Port })},
	{Env: "KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR", Default: "/var/run/secrets/kuma.io/tls-cert", Form: FormDir,
		Description: "Directory with the webhook's tls.crt and tls.key; reloaded when they change.",
		set:         bind(parseDir, func(c *Config) *string { return &c.AdmissionServer.CertDir })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED", Default: "false", Form: api.FormBool,
		Description: "The CNI plugin installs the rules: no kuma-init, a validation container instead.",
		set:         bind(api.ParseBool, func(c *Config) *bool { return &c.Injector.CNIEnabled })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE", Default: "docker.io/kumahq/kuma-dp:2.9.3", Form: FormImage,
		Description: "Image of kuma-sidecar.",
		set:         bind(parseImage, func(c *Config) *string { return &c.Injector.SidecarContainer.Image })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID", Default: "5678", Form: FormUID,
		Description: "UID of kuma-sidecar; its traffic is never redirected, so no app container may use it.",
		set:         bind(parseSidecarUID, func(c *Config) *int64 { return &c.Injector.SidecarContainer.UID })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GID", Aliases: []string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GUI"},
		Default: "5678", Form: FormGID, Description: "GID of kuma-sidecar.",
		set: bind(parseGID, func(c *Config) *int64 { return &c.Injector.SidecarContainer.GID })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND", Default: "15006", Form: api.FormPort,
		Description: "Sidecar port that inbound traffic is redirected to.",
		set:         bind(api.ParsePort, func(c *Config) *uint16 { return &c.Injector.SidecarContainer.RedirectPortInbound })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_OUTBOUND", Default: "15001", Form: api.FormPort,
		Description: "Sidecar port that outbound traffic is redirected to.",
		set:         bind(api.ParsePort, func(c *Config) *uint16 { return &c.Injector.SidecarContainer.RedirectPortOutbound })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE", Default: "dualstack", Form: api.FormIPFamilyMode,
		Description: "IP families whose traffic is redirected (ipv4 where nodes have no IPv6, as on EKS).",
		set:         bind(api.ParseIPFamilyMode, func(c *Config) *api.IPFamilyMode { return &c.Injector.SidecarContainer.IPFamilyMode })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME", Default: "30s", Form: api.FormDuration,
		Description: "How long the sidecar drains connections when stopping.",
		set:         bind(api.ParseDuration, func(c *Config) *time.Duration { return &c.Injector.SidecarContainer.DrainTime })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS", Default: "", Form: FormEnvVars,
		Description: "Extra environment of every sidecar; kuma.io/sidecar-env-vars adds to it per pod.",
		set:         bind(parseEnvVars, func(c *Config) *api.EnvVars { return &c.Injector.SidecarContainer.EnvVars })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU", Aliases: []string{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU"},
		Default: "50m", Form: FormQuantity, Description: "CPU request of kuma-sidecar.",
		set: bind(parseQuantity, func(c *Config) *resource.Quantity { return &c.Injector.SidecarContainer.Resources.RequestsCPU })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY", Aliases: []string{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY"},
		Default: "64Mi", Form: FormQuantity, Description: "Memory request of kuma-sidecar.",
		set: bind(parseQuantity, func(c *Config) *resource.Quantity { return &c.Injector.SidecarContainer.Resources.RequestsMemory })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU", Aliases: []string{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU"},
		Default: "1000m", Form: FormQuantity, Description: "CPU limit of kuma-sidecar.",
		set: bind(parseQuantity, func(c *Config) *resource.Quantity { return &c.Injector.SidecarContainer.Resources.LimitsCPU })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY", Aliases: []string{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY"},
		Default: "512Mi", Form: FormQuantity, Description: "Memory limit of kuma-sidecar.",
		set: bind(parseQuantity, func(c *Config) *resource.Quantity { return &c.Injector.SidecarContainer.Resources.LimitsMemory })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_IMAGE", Aliases: []string{"KUMA_INJECTOR_INIT_CONTAINER_IMAGE"},
		Default: "ghcr.io/meshinit/kuma-init:0.1.0", Form: FormImage, Description: "Image of kuma-init.",
		set: bind(parseImage, func(c *Config) *string { return &c.Injector.InitContainer.Image })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_PRIVILEGED", Default: "false", Form: api.FormBool,
		Description: "Run kuma-init fully privileged, where a platform does not grant NET_ADMIN and NET_RAW alone.",
		set:         bind(api.ParseBool, func(c *Config) *bool { return &c.Injector.InitContainer.Privileged })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_ENABLED", Default: "true", Form: api.FormBool,
		Description: "Redirect DNS to the sidecar's DNS server; kuma.io/builtin-dns overrides it per pod.",
		set:         bind(api.ParseBool, func(c *Config) *bool { return &c.Injector.BuiltinDNS.Enabled })},
	{Env: "KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT", Default: "15053", Form: api.FormPort,
		Description: "Port of the sidecar's DNS server.",
		set:         bind(api.ParsePort, func(c *Config) *uint16 { return &c.Injector.BuiltinDNS.Port })},
	{Env: "KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT", Default: "9001", Form: api.FormOptionalPort,
		Description: "Sidecar port serving the apps' rewritten probes; 0 excludes probe ports from redirection instead.",
		set:         bind(api.ParseOptionalPort, func(c *Config) *uint16 { return &c.Injector.ApplicationProbeProxyPort })},
	{Env: "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS", Default: "", Form: api.FormPortRanges,
		Description: "Inbound ports never redirected, unless a pod's traffic.kuma.io/exclude-inbound-ports replaces them.",
		set:         bind(api.ParsePortRanges, func(c *Config) *api.PortRanges { return &c.SidecarTraffic.ExcludeInboundPorts })},
	{Env: "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS", Default: "", Form: api.FormPortRanges,
		Description: "Outbound ports never redirected, unless a pod's traffic.kuma.io/exclude-outbound-ports replaces them.",
		set:         bind(api.ParsePortRanges, func(c *Config) *api.PortRanges { return &c.SidecarTraffic.ExcludeOutboundPorts })},
	{Env: "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_IPS", Default: "", Form: api.FormCIDRs,
		Description: "Source addresses never redirected inbound, unless a pod's traffic.kuma.io/exclude-inbound-ips replaces them.",
		set:         bind(api.ParseCIDRs, func(c *Config) *api.CIDRs { return &c.SidecarTraffic.ExcludeInboundIPs })},
	{Env: "KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS", Default: "", Form: api.FormCIDRs,
		Description: "Destinations never redirected outbound, unless a pod's traffic.kuma.io/exclude-outbound-ips replaces them.",
		set:         bind(api.ParseCIDRs, func(c *Config) *api.CIDRs { return &c.SidecarTraffic.ExcludeOutboundIPs })},
	{Env: "KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS", Default: "openshift.io/build.name:*,openshift.io/deployer-pod-for.name:*",
		Form: FormLabels, Description: "Pods with any of these labels are never injected (OpenShift's build and deployer pods by default).",
		set: bind(parseLabelSelectors, func(c *Config) *map[string]string { return &c.Exceptions.Labels })},
	{Env: "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_ENABLED", Default: "false", Form: api.FormBool,
		Description: "Taint nodes NodeReadiness:NoSchedule until a ready CNI pod runs on them.",
		set:         bind(api.ParseBool, func(c *Config) *bool { return &c.NodeTaintController.Enabled })},
	{Env: "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_APP", Default: "kuma-cni", Form: FormLabelValue,
		Description: "The app label of the CNI DaemonSet's pods.",
		set:         bind(parseLabelValue, func(c *Config) *string { return &c.NodeTaintController.CNIApp })},
	{Env: "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_NAMESPACE", Default: "kube-system", Form: FormNamespace,
		Description: "Namespace of the CNI DaemonSet's pods.",
		set:         bind(parseNamespace, func(c *Config) *string { return &c.NodeTaintController.CNINamespace })},
	{Env: "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_NODE_SELECTOR", Default: "", Form: FormSelector,
		Description: "The nodes the CNI DaemonSet runs on, as its node selector says; other nodes are never tainted.",
		set:         bind(parseSelector, func(c *Config) *labels.Selector { return &c.NodeTaintController.Nodes })},
}

// bind makes a setter from a parser and the field it fills.
func bind[T any](parse func(string) (T, error), field func(*Config) *T) func(*Config, string) error {
	return func(c *Config, value string) error {
		v, err := parse(value)
		if err != nil {
			return err
		}
		*field(c) = v
		return nil
	}
}

package api

import "time"

// Labels meshinit reads.
const (
	// LabelSidecarInjection on a Namespace or a Pod selects injection; the Pod's label wins.
	LabelSidecarInjection = "kuma.io/sidecar-injection"
	// LabelMesh names the pod's mesh, read from the Pod then its Namespace, and written on the Pod.
	LabelMesh = "kuma.io/mesh"
)

// Pod annotations meshinit reads. Each replaces its cluster-wide default; it does not merge.
const (
	AnnotationExcludeInboundPorts         = "traffic.kuma.io/exclude-inbound-ports"
	AnnotationExcludeOutboundPorts        = "traffic.kuma.io/exclude-outbound-ports"
	AnnotationExcludeInboundIPs           = "traffic.kuma.io/exclude-inbound-ips"
	AnnotationExcludeOutboundIPs          = "traffic.kuma.io/exclude-outbound-ips"
	AnnotationExcludeOutboundPortsForUIDs = "traffic.kuma.io/exclude-outbound-ports-for-uids"
	AnnotationDropInvalidPackets          = "traffic.kuma.io/drop-invalid-packets"
	AnnotationIPTablesLogs                = "traffic.kuma.io/iptables-logs"
	AnnotationIPFamilyMode                = "kuma.io/transparent-proxying-ip-family-mode"
	AnnotationReachableServices           = "kuma.io/transparent-proxying-reachable-services"
	AnnotationBuiltinDNS                  = "kuma.io/builtin-dns"
	AnnotationBuiltinDNSPort              = "kuma.io/builtin-dns-port"
	AnnotationGateway                     = "kuma.io/gateway"
	AnnotationSidecarEnvVars              = "kuma.io/sidecar-env-vars"
	AnnotationSidecarDrainTime            = "kuma.io/sidecar-drain-time"
	AnnotationInitFirst                   = "kuma.io/init-first"
	AnnotationApplicationProbeProxyPort   = "kuma.io/application-probe-proxy-port"
	// AnnotationTransparentProxyConfigMap names a ConfigMap of the pod's namespace whose
	// config.yaml is read over the cluster's.
	AnnotationTransparentProxyConfigMap = "traffic.kuma.io/transparent-proxy-configmap-name"
	AnnotationContainerPatches          = "kuma.io/container-patches"
	AnnotationSidecarConcurrency        = "kuma.io/sidecar-proxy-concurrency"
	AnnotationEnvoyAdminPort            = "kuma.io/envoy-admin-port"
	AnnotationEnvoyLogLevel             = "kuma.io/envoy-log-level"
	AnnotationEnvoyComponentLogLevel    = "kuma.io/envoy-component-log-level"
	AnnotationServiceAccountTokenVolume = "kuma.io/service-account-token-volume"
)

// Pod annotations meshinit writes.
const (
	AnnotationSidecarInjected        = "kuma.io/sidecar-injected"
	AnnotationTransparentProxying    = "kuma.io/transparent-proxying"
	AnnotationTransparentProxyConfig = "traffic.kuma.io/transparent-proxy-config"
	// Kuma 2.9-2.14's pod converter builds the Dataplane from these; kuma.io/sidecar-uid is read
	// by Kuma's own kuma-cni and kumactl on pods without a configuration document.
	AnnotationInboundPort  = "kuma.io/transparent-proxying-inbound-port"
	AnnotationOutboundPort = "kuma.io/transparent-proxying-outbound-port"
	AnnotationSidecarUID   = "kuma.io/sidecar-uid"
	// AnnotationDefaultContainer makes kubectl logs and exec pick the app, not the sidecar.
	AnnotationDefaultContainer = "kubectl.kubernetes.io/default-container"
	// AnnotationMultusNetworks attaches the kuma-cni network where Multus runs the CNI plugin.
	AnnotationMultusNetworks = "k8s.v1.cni.cncf.io/networks"
)

// AnnotationsKumaReads are the annotations the injector writes, beside the configuration and the
// injected marker, that readers act on: Kuma 2.9-2.14's pod converter, Kuma's kuma-cni on pods
// without a configuration document, and Multus. The chart's admission policy keeps them as the
// injector wrote them on injected pods (charts' TestAdmissionPolicyProtects holds the two
// together, and webhook's TestInjectorWritesOnlyProtectedAnnotations the injector).
var AnnotationsKumaReads = []string{AnnotationTransparentProxying, AnnotationInboundPort, AnnotationOutboundPort, AnnotationIPFamilyMode,
	AnnotationSidecarUID, AnnotationEnvoyAdminPort, AnnotationBuiltinDNS, AnnotationBuiltinDNSPort, AnnotationApplicationProbeProxyPort,
	AnnotationGateway, AnnotationMultusNetworks}

// Containers meshinit injects, by name: Kuma's names, which Kuma's control plane and kuma-cni
// know injected pods by.
const (
	ContainerSidecar    = "kuma-sidecar"
	ContainerInit       = "kuma-init"
	ContainerValidation = "kuma-validation"
)

// Built-in defaults that the contract names.
const (
	// DefaultTransparentProxyConfigMap is Kuma's cluster-wide configuration, in the control
	// plane's namespace, key ConfigMapKey.
	DefaultTransparentProxyConfigMap = "kuma-transparent-proxy-config"
	ConfigMapKey                     = "config.yaml"
	DefaultMesh                      = "default"
	DefaultSidecarUID                = 5678
	DefaultSidecarGID                = 5678
	DefaultRedirectPortInbound       = 15006
	DefaultRedirectPortOutbound      = 15001
	DefaultBuiltinDNSPort            = 15053
	DefaultApplicationProbeProxyPort = 9001
	DefaultDrainTime                 = 30 * time.Second
	// DefaultEnvoyAdminPort is where kuma-cp serves, on the pod's address, the readiness that
	// kuma-dp before 2.14 reports.
	DefaultEnvoyAdminPort = 9901
	// SidecarReadinessPort is where kuma-dp reports readiness (KUMA_READINESS_PORT), on the
	// pod's address from 2.14 on: no other sidecar listener may take it.
	SidecarReadinessPort = 9902
)

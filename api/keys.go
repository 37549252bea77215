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
)

// Pod annotations meshinit writes.
const (
	AnnotationSidecarInjected        = "kuma.io/sidecar-injected"
	AnnotationTransparentProxying    = "kuma.io/transparent-proxying"
	AnnotationTransparentProxyConfig = "traffic.kuma.io/transparent-proxy-config"
	// AnnotationDefaultContainer makes kubectl logs and exec pick the app, not the sidecar.
	AnnotationDefaultContainer = "kubectl.kubernetes.io/default-container"
	// AnnotationMultusNetworks attaches the kuma-cni network where Multus runs the CNI plugin.
	AnnotationMultusNetworks = "k8s.v1.cni.cncf.io/networks"
)

// Built-in defaults that the contract names.
const (
	DefaultMesh                      = "default"
	DefaultSidecarUID                = 5678
	DefaultSidecarGID                = 5678
	DefaultRedirectPortInbound       = 15006
	DefaultRedirectPortOutbound      = 15001
	DefaultBuiltinDNSPort            = 15053
	DefaultApplicationProbeProxyPort = 9001
	DefaultDrainTime                 = 30 * time.Second
	// SidecarReadinessPort is where kuma-dp reports readiness (KUMA_READINESS_PORT): no other
	// sidecar listener may take it.
	SidecarReadinessPort = 9902
)

// KeyKind says where a key lives on an object.
type KeyKind string

const (
	KindLabel      KeyKind = "label"
	KindAnnotation KeyKind = "annotation"
)

// Key documents one label or annotation of the contract; Keys is the single list that the README's
// table, the fuzzers and the webhook's checks are built from.
type Key struct {
	Name string
	Kind KeyKind
	// Written is true for keys meshinit sets on injected pods rather than reads from users.
	Written bool
	// Form is the accepted form of the value.
	Form string
	// Default is what applies when the key is absent.
	Default     string
	Description string
	check       func(string) error
}

// Check validates a value of the key, naming the key in the error.
func (k Key) Check(value string) error {
	if k.check == nil {
		return nil
	}
	var errs FieldErrors
	errs.Add(k.Name, k.check(value))
	return errs.Err()
}

// Keys lists every label and annotation of the contract.
var Keys = []Key{
	{Name: LabelSidecarInjection, Kind: KindLabel, Form: FormSwitch, Default: "no injection",
		Description: "On a Namespace or a Pod; the Pod's label wins. As an annotation it has no effect.",
		check:       discard(ParseSwitch)},
	{Name: LabelMesh, Kind: KindLabel, Form: FormMeshName, Default: DefaultMesh,
		Description: "The pod's mesh: the Pod's label, else its Namespace's.",
		check:       discard(ParseMeshName)},
	{Name: AnnotationExcludeInboundPorts, Kind: KindAnnotation, Form: FormPortRanges, Default: "cluster default",
		Description: "Inbound ports not redirected to the sidecar.", check: discard(ParsePortRanges)},
	{Name: AnnotationExcludeOutboundPorts, Kind: KindAnnotation, Form: FormPortRanges, Default: "cluster default",
		Description: "Outbound ports not redirected to the sidecar.", check: discard(ParsePortRanges)},
	{Name: AnnotationExcludeInboundIPs, Kind: KindAnnotation, Form: FormCIDRs, Default: "cluster default",
		Description: "Source addresses whose inbound traffic is not redirected.", check: discard(ParseCIDRs)},
	{Name: AnnotationExcludeOutboundIPs, Kind: KindAnnotation, Form: FormCIDRs, Default: "cluster default",
		Description: "Destination addresses whose outbound traffic is not redirected.", check: discard(ParseCIDRs)},
	{Name: AnnotationExcludeOutboundPortsForUIDs, Kind: KindAnnotation, Form: FormPortsForUIDs, Default: "none",
		Description: "Outbound traffic of these UIDs, to these ports, is not redirected.",
		check:       discard(ParsePortsForUIDsList)},
	{Name: AnnotationDropInvalidPackets, Kind: KindAnnotation, Form: FormBool, Default: "false",
		Description: "Drop packets conntrack marks INVALID before they reach the sidecar.", check: discard(ParseBool)},
	{Name: AnnotationIPTablesLogs, Kind: KindAnnotation, Form: FormBool, Default: "false",
		Description: "Log redirected packets (rate-limited) to the kernel log.", check: discard(ParseBool)},
	{Name: AnnotationIPFamilyMode, Kind: KindAnnotation, Form: FormIPFamilyMode, Default: "cluster default (dualstack)",
		Description: "IP families whose traffic is redirected.", check: discard(ParseIPFamilyMode)},
	{Name: AnnotationReachableServices, Kind: KindAnnotation, Form: FormServices, Default: "all services",
		Description: "Services this pod talks to, so the proxy's configuration can be scoped to them.",
		check:       discard(ParseServices)},
	{Name: AnnotationBuiltinDNS, Kind: KindAnnotation, Form: FormSwitch, Default: "cluster default (enabled)",
		Description: "Redirect DNS to the sidecar's DNS server.", check: discard(ParseSwitch)},
	{Name: AnnotationBuiltinDNSPort, Kind: KindAnnotation, Form: FormPort, Default: "cluster default (15053)",
		Description: "Port of the sidecar's DNS server.", check: discard(ParsePort)},
	{Name: AnnotationGateway, Kind: KindAnnotation, Form: FormSwitch, Default: "disabled",
		Description: "A gateway: inbound traffic is not redirected.", check: discard(ParseSwitch)},
	{Name: AnnotationSidecarEnvVars, Kind: KindAnnotation, Form: FormEnvVars, Default: "none",
		Description: "Extra environment of the sidecar, over the cluster's.", check: discard(ParseEnvVars)},
	{Name: AnnotationSidecarDrainTime, Kind: KindAnnotation, Form: FormDuration, Default: "cluster default (30s)",
		Description: "How long the sidecar drains connections when stopping.", check: discard(ParseDuration)},
	{Name: AnnotationInitFirst, Kind: KindAnnotation, Form: FormBool, Default: "false",
		Description: "Place kuma-init before the pod's own init containers.", check: discard(ParseBool)},
	{Name: AnnotationApplicationProbeProxyPort, Kind: KindAnnotation, Form: FormOptionalPort,
		Default:     "cluster default (9001)",
		Description: "Port on the sidecar that serves the app's rewritten probes; 0 excludes probe ports instead.",
		check:       discard(ParseOptionalPort)},
	{Name: AnnotationSidecarInjected, Kind: KindAnnotation, Written: true, Form: "true",
		Description: "Set on injected pods."},
	{Name: AnnotationTransparentProxying, Kind: KindAnnotation, Written: true, Form: "enabled",
		Description: "Set on injected pods."},
	{Name: AnnotationTransparentProxyConfig, Kind: KindAnnotation, Written: true,
		Form:        "a " + ConfigKind + " document (" + ConfigAPIVersion + ")",
		Description: "The effective transparent-proxy configuration, read by kuma-init and kuma-cni."},
	{Name: AnnotationDefaultContainer, Kind: KindAnnotation, Written: true, Form: "a container name",
		Description: "Set on single-container pods, so kubectl picks the app."},
	{Name: AnnotationMultusNetworks, Kind: KindAnnotation, Written: true, Form: "kuma-cni",
		Description: "Set in CNI mode, for Multus."},
}

// LookupKey returns the contract's entry for name.
func LookupKey(name string) (Key, bool) {
	for _, k := range Keys {
		if k.Name == name {
			return k, true
		}
	}
	return Key{}, false
}

func discard[T any](parse func(string) (T, error)) func(string) error {
	return func(s string) error {
		_, err := parse(s)
		return err
	}
}

package settings

import (
	"strconv"
	"time"

	"github.com/meshinit/meshinit/api"
)

const runtime = "KUMA_RUNTIME_KUBERNETES_"

func itoa[T ~int | ~int64 | ~uint16](n T) string { return strconv.FormatInt(int64(n), 10) }

func parseText(s string) (string, error) { return s, nil }

// Settings of the traffic the sidecar sees: in the configuration document, and so spelled by
// kumactl's flags too.
var (
	KumaDPUser = declareValue(&Value[string]{Setting: &Setting{Name: "kuma-dp-user",
		Description: "The proxy's user, by name or UID; its traffic is never redirected.",
		Flag:        "kuma-dp-user", FlagValue: "user", DeprecatedFlags: []string{"kuma-dp-uid"}, Form: api.FormUser},
		Parse: parseText, In: func(c *api.TransparentProxyConfig) *string { return &c.KumaDPUser }})

	// IPFamilyMode's ipv6 is meshinit's: Kuma's field says dualstack, and meshinit.ipFamilyMode ipv6.
	IPFamilyMode = declareValue(&Value[api.IPFamilyMode]{Setting: &Setting{Name: "ip-family-mode",
		Description: "IP families whose traffic is redirected (ipv4 where nodes have no IPv6, as on EKS).",
		Annotation:  api.AnnotationIPFamilyMode,
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE", Default: string(api.IPFamilyDualStack),
		Flag: "ip-family-mode", FlagValue: "mode", Field: "ipFamilyMode", Chart: "dataPlane.ipFamilyMode",
		Form: api.FormIPFamilyMode},
		Parse: api.ParseIPFamilyMode, Get: (*api.TransparentProxyConfig).Family, Set: (*api.TransparentProxyConfig).SetFamily})

	// TransparentProxyBackend is meshinit's: Kuma's rules are iptables rules, and its readers ignore
	// meshinit.backend.
	TransparentProxyBackend = declareValue(&Value[api.Backend]{Setting: &Setting{Name: "transparent-proxy-backend",
		Description: "How the rules reach the kernel: iptables (its tools), nftables (a table of meshinit's own, over netlink, no iptables needed) or auto (iptables where the pod or node already uses it, nftables where iptables is missing).",
		Env:         runtime + "INJECTOR_TRANSPARENT_PROXY_BACKEND", Default: string(api.BackendAuto),
		Flag: "backend", FlagValue: "backend", Field: "meshinit.backend", Chart: "dataPlane.transparentProxyBackend",
		Form: api.FormBackend},
		Parse: api.ParseBackend, Get: (*api.TransparentProxyConfig).Backend, Set: (*api.TransparentProxyConfig).SetBackend})

	RedirectInbound = declareValue(&Value[bool]{Setting: &Setting{Name: "redirect-inbound",
		Description: "Redirect inbound traffic to the sidecar (false for gateways).",
		Flag:        "redirect-inbound", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.Redirect.Inbound.Enabled }})

	// Gateway's annotation is written back as Kuma's pod converter takes it: enabled, or none.
	Gateway = declareValue(&Value[bool]{Setting: &Setting{Name: "gateway",
		Description: "A gateway: inbound traffic is not redirected, and probes are not proxied.",
		Annotation:  api.AnnotationGateway, Default: "disabled", Form: api.FormGateway},
		Parse: api.ParseGateway})

	RedirectPortInbound = declareValue(&Value[uint16]{Setting: &Setting{Name: "redirect-inbound-port",
		Description: "Sidecar port that inbound traffic is redirected to.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND", Default: itoa(api.DefaultRedirectPortInbound),
		Flag: "redirect-inbound-port", FlagValue: "port", Chart: "dataPlane.redirectPortInbound",
		Form: api.FormPort},
		Parse: api.ParsePort, In: func(c *api.TransparentProxyConfig) *uint16 { return &c.Redirect.Inbound.Port }})

	RedirectPortOutbound = declareValue(&Value[uint16]{Setting: &Setting{Name: "redirect-outbound-port",
		Description: "Sidecar port that outbound traffic is redirected to.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_OUTBOUND", Default: itoa(api.DefaultRedirectPortOutbound),
		Flag: "redirect-outbound-port", FlagValue: "port", Chart: "dataPlane.redirectPortOutbound",
		Form: api.FormPort},
		Parse: api.ParsePort, In: func(c *api.TransparentProxyConfig) *uint16 { return &c.Redirect.Outbound.Port }})

	RedirectInboundInsertInsteadOfAppend = declareValue(&Value[bool]{Setting: &Setting{Name: "redirect-inbound-insert-instead-of-append",
		Description: "Insert the jump to the inbound rules first in PREROUTING, ahead of rules others added, instead of appending it.",
		Flag:        "redirect-inbound-insert-instead-of-append", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.Redirect.Inbound.InsertRedirectInsteadOfAppend }})

	RedirectOutboundInsertInsteadOfAppend = declareValue(&Value[bool]{Setting: &Setting{Name: "redirect-outbound-insert-instead-of-append",
		Description: "Insert the jump to the outbound rules first in OUTPUT, ahead of rules others added, instead of appending it.",
		Flag:        "redirect-outbound-insert-instead-of-append", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.Redirect.Outbound.InsertRedirectInsteadOfAppend }})

	// BuiltinDNS is on by default on Kubernetes, as in Kuma, and off for kumactl's flag.
	BuiltinDNS = declareValue(&Value[bool]{Setting: &Setting{Name: "builtin-dns",
		Description: "Redirect DNS to the sidecar's DNS server.",
		Annotation:  api.AnnotationBuiltinDNS, AnnotationForm: api.FormSwitch,
		Env: runtime + "INJECTOR_BUILTIN_DNS_ENABLED", Default: "true",
		Flag: "redirect-dns", FlagValue: "bool", Chart: "dataPlane.builtinDNS.enabled",
		Form: api.FormBool},
		Parse: api.ParseBool, ParseAnnotation: api.ParseSwitch, In: func(c *api.TransparentProxyConfig) *bool { return &c.Redirect.DNS.Enabled }})

	// RedirectAllDNSTraffic's flag also turns on redirect-dns, as kumactl's does.
	RedirectAllDNSTraffic = declareValue(&Value[bool]{Setting: &Setting{Name: "redirect-all-dns-traffic",
		Description: "Redirect DNS to any address to the sidecar's DNS, not only to the nameservers of resolv.conf (implies redirect-dns).",
		Flag:        "redirect-all-dns-traffic", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.Redirect.DNS.CaptureAll },
		FlagApply: func(all bool) func(*api.TransparentProxyConfig) {
			return func(c *api.TransparentProxyConfig) {
				c.Redirect.DNS.CaptureAll = all
				c.Redirect.DNS.Enabled = c.Redirect.DNS.Enabled || all
			}
		}})

	BuiltinDNSPort = declareValue(&Value[uint16]{Setting: &Setting{Name: "builtin-dns-port",
		Description: "Port of the sidecar's DNS server.",
		Annotation:  api.AnnotationBuiltinDNSPort,
		Env:         runtime + "INJECTOR_BUILTIN_DNS_PORT", Default: itoa(api.DefaultBuiltinDNSPort),
		Flag: "redirect-dns-port", FlagValue: "port", Chart: "dataPlane.builtinDNS.port",
		Form: api.FormPort},
		Parse: api.ParsePort, In: func(c *api.TransparentProxyConfig) *uint16 { return &c.Redirect.DNS.Port }})

	SkipDNSConntrackZoneSplit = declareValue(&Value[bool]{Setting: &Setting{Name: "skip-dns-conntrack-zone-split",
		Description: "Do not keep the proxy's and the applications' DNS flows in separate conntrack zones.",
		Flag:        "skip-dns-conntrack-zone-split", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.Redirect.DNS.SkipConntrackZoneSplit }})

	// The excluded ports are Kuma's single ports and meshinit's ranges, in two fields. An empty
	// exclusion annotation keeps the cluster's exclusions, as Kuma 3.0 and its ConfigMap mode read it.
	ExcludeInboundPorts = declareValue(&Value[api.PortRanges]{Setting: &Setting{Name: "exclude-inbound-ports",
		Description: "Inbound ports not redirected to the sidecar.",
		Annotation:  api.AnnotationExcludeInboundPorts, EmptyKeepsCluster: true,
		Env:  runtime + "SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS",
		Flag: "exclude-inbound-ports", FlagValue: "ports", Field: "redirect.inbound.excludePorts",
		Chart: "dataPlane.traffic.excludeInboundPorts", Form: api.FormPortRanges},
		Parse: api.ParsePortRanges, Get: (*api.TransparentProxyConfig).InboundExcluded, Set: (*api.TransparentProxyConfig).SetInboundExcluded})

	ExcludeOutboundPorts = declareValue(&Value[api.PortRanges]{Setting: &Setting{Name: "exclude-outbound-ports",
		Description: "Outbound ports not redirected to the sidecar.",
		Annotation:  api.AnnotationExcludeOutboundPorts, EmptyKeepsCluster: true,
		Env:  runtime + "SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS",
		Flag: "exclude-outbound-ports", FlagValue: "ports", Field: "redirect.outbound.excludePorts",
		Chart: "dataPlane.traffic.excludeOutboundPorts", Form: api.FormPortRanges},
		Parse: api.ParsePortRanges, Get: (*api.TransparentProxyConfig).OutboundExcluded, Set: (*api.TransparentProxyConfig).SetOutboundExcluded})

	// The excluded addresses' flags are repeatable, each a list, as kumactl's are.
	ExcludeInboundIPs = declareValue(&Value[api.CIDRs]{Setting: &Setting{Name: "exclude-inbound-ips",
		Description: "Source addresses whose inbound traffic is not redirected.",
		Annotation:  api.AnnotationExcludeInboundIPs, EmptyKeepsCluster: true,
		Env:  runtime + "SIDECAR_TRAFFIC_EXCLUDE_INBOUND_IPS",
		Flag: "exclude-inbound-ips", FlagValue: "addresses", FlagRepeatable: true,
		Chart: "dataPlane.traffic.excludeInboundIPs", Form: api.FormCIDRs},
		Parse: api.ParseCIDRs, In: func(c *api.TransparentProxyConfig) *api.CIDRs { return &c.Redirect.Inbound.ExcludePortsForIPs },
		FlagApply: func(ips api.CIDRs) func(*api.TransparentProxyConfig) {
			return func(c *api.TransparentProxyConfig) {
				c.Redirect.Inbound.ExcludePortsForIPs = append(c.Redirect.Inbound.ExcludePortsForIPs, ips...)
			}
		}})

	ExcludeOutboundIPs = declareValue(&Value[api.CIDRs]{Setting: &Setting{Name: "exclude-outbound-ips",
		Description: "Destination addresses whose outbound traffic is not redirected.",
		Annotation:  api.AnnotationExcludeOutboundIPs, EmptyKeepsCluster: true,
		Env:  runtime + "SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS",
		Flag: "exclude-outbound-ips", FlagValue: "addresses", FlagRepeatable: true,
		Chart: "dataPlane.traffic.excludeOutboundIPs", Form: api.FormCIDRs},
		Parse: api.ParseCIDRs, In: func(c *api.TransparentProxyConfig) *api.CIDRs { return &c.Redirect.Outbound.ExcludePortsForIPs },
		FlagApply: func(ips api.CIDRs) func(*api.TransparentProxyConfig) {
			return func(c *api.TransparentProxyConfig) {
				c.Redirect.Outbound.ExcludePortsForIPs = append(c.Redirect.Outbound.ExcludePortsForIPs, ips...)
			}
		}})

	ExcludeOutboundPortsForUIDs = declareValue(&Value[api.PortsForUIDsList]{Setting: &Setting{Name: "exclude-outbound-ports-for-uids",
		Description: "Outbound traffic of these UIDs, to these ports, is not redirected.",
		Annotation:  api.AnnotationExcludeOutboundPortsForUIDs,
		Flag:        "exclude-outbound-ports-for-uids", FlagValue: "entry", FlagRepeatable: true,
		Form: api.FormPortsForUIDs},
		Parse: api.ParsePortsForUIDsList,
		In: func(c *api.TransparentProxyConfig) *api.PortsForUIDsList {
			return &c.Redirect.Outbound.ExcludePortsForUIDs
		},
		FlagApply: func(entries api.PortsForUIDsList) func(*api.TransparentProxyConfig) {
			return func(c *api.TransparentProxyConfig) {
				c.Redirect.Outbound.ExcludePortsForUIDs = append(c.Redirect.Outbound.ExcludePortsForUIDs, entries...)
			}
		}})

	VNet = declareValue(&Value[api.VNetworks]{Setting: &Setting{Name: "vnet",
		Description: "Virtual networks whose traffic is the host's own (Docker's bridges, say); repeatable.",
		Flag:        "vnet", FlagValue: "interface:CIDR", FlagRepeatable: true, Form: api.FormVNetwork},
		Parse: api.ParseVNetworks, In: func(c *api.TransparentProxyConfig) *api.VNetworks { return &c.Redirect.VNet.Networks },
		FlagApply: func(nets api.VNetworks) func(*api.TransparentProxyConfig) {
			return func(c *api.TransparentProxyConfig) {
				c.Redirect.VNet.Networks = append(c.Redirect.VNet.Networks, nets...)
			}
		}})

	DropInvalidPackets = declareValue(&Value[bool]{Setting: &Setting{Name: "drop-invalid-packets",
		Description: "Drop packets conntrack marks INVALID before they reach the sidecar.",
		Annotation:  api.AnnotationDropInvalidPackets, Default: "false",
		Flag: "drop-invalid-packets", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.DropInvalidPackets }})

	IPTablesLogs = declareValue(&Value[bool]{Setting: &Setting{Name: "iptables-logs",
		Description: "Log redirected packets (rate-limited) to the kernel log.",
		Annotation:  api.AnnotationIPTablesLogs, Default: "false",
		Flag: "iptables-logs", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.Log.Enabled }})

	DisableComments = declareValue(&Value[bool]{Setting: &Setting{Name: "disable-comments",
		Description: "Install the rules without the comments that mark them as meshinit's; uninstall then finds them by their chains.",
		Flag:        "disable-comments", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.Comments.Disabled }})

	ReachableServices = declareValue(&Value[api.Services]{Setting: &Setting{Name: "reachable-services",
		Description: "Services this pod talks to, so the proxy's configuration can be scoped to them; none: all services.",
		Annotation:  api.AnnotationReachableServices, Form: api.FormServices},
		Parse: api.ParseServices, In: func(c *api.TransparentProxyConfig) *api.Services { return &c.Meshinit.ReachableServices }})

	StoreFirewalld = declareValue(&Value[bool]{Setting: &Setting{Name: "store-firewalld",
		Description: "Also store the rules in firewalld's direct.xml, so that firewalld restores them at boot.",
		Flag:        "store-firewalld", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.StoreFirewalld }})

	Verbose = declareValue(&Value[bool]{Setting: &Setting{Name: "verbose",
		Description: "Print the scripts applied and the rules removed.",
		Flag:        "verbose", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.Verbose }})

	IPTablesExecutables = declareValue(&Value[api.Executables]{Setting: &Setting{Name: "iptables-executables",
		Description: "The iptables programs to run, by role, instead of the ones found.",
		Flag:        "iptables-executables", FlagValue: "name:path,...", Form: api.FormExecutables},
		Parse: api.ParseExecutables, In: func(c *api.TransparentProxyConfig) *api.Executables { return &c.IPTablesExecutables }})

	Wait = declareValue(&Value[uint]{Setting: &Setting{Name: "wait",
		Description: "Seconds to wait for the xtables lock.",
		Flag:        "wait", FlagValue: "seconds", Form: api.FormCount},
		Parse: api.ParseCount, In: func(c *api.TransparentProxyConfig) *uint { return &c.Wait }})

	WaitInterval = declareValue(&Value[uint]{Setting: &Setting{Name: "wait-interval",
		Description: "Microseconds between two tries to take the xtables lock (legacy iptables).",
		Flag:        "wait-interval", FlagValue: "microseconds", Form: api.FormCount},
		Parse: api.ParseCount, In: func(c *api.TransparentProxyConfig) *uint { return &c.WaitInterval }})

	MaxRetries = declareValue(&Value[uint]{Setting: &Setting{Name: "max-retries",
		Description: "Attempts after a failure to take the xtables lock.",
		Flag:        "max-retries", FlagValue: "count", Form: api.FormCount},
		Parse: api.ParseCount, In: func(c *api.TransparentProxyConfig) *uint { return &c.Retry.MaxRetries }})

	SleepBetweenRetries = declareValue(&Value[api.Duration]{Setting: &Setting{Name: "sleep-between-retries",
		Description: "How long to wait between two attempts.",
		Flag:        "sleep-between-retries", FlagValue: "duration", Form: api.FormDurationText},
		Parse: api.ParseDurationText, In: func(c *api.TransparentProxyConfig) *api.Duration { return &c.Retry.SleepBetweenRetries }})

	// ResolvConfigPath's flag is meshinit's own: kumactl reads the field from the document alone.
	ResolvConfigPath = declareValue(&Value[string]{Setting: &Setting{Name: "resolv-config-path",
		Description: "The resolv.conf whose nameservers' DNS is redirected.",
		Flag:        "resolv-conf", FlagValue: "path", Form: api.FormFilePath},
		Parse: parseText, In: func(c *api.TransparentProxyConfig) *string { return &c.Redirect.DNS.ResolvConfigPath }})

	DryRun = declareValue(&Value[bool]{Setting: &Setting{Name: "dry-run",
		Description: "Print the iptables-restore scripts and change nothing; install prints its plan with --output json.",
		Flag:        "dry-run", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.DryRun }})

	// EBPFEnabled is kumactl's flag before 3.0; the document's validation refuses true.
	EBPFEnabled = declareValue(&Value[bool]{Setting: &Setting{Name: "ebpf-enabled",
		Description: "Use Kuma's eBPF mode (before 3.0) instead of iptables rules; meshinit does not implement it, so only false is accepted.",
		Flag:        "ebpf-enabled", FlagValue: "bool", Form: api.FormBool},
		Parse: api.ParseBool, In: func(c *api.TransparentProxyConfig) *bool { return &c.EBPF.Enabled }})
)

// Settings of the injected containers, set per pod by annotations or for the cluster.
var (
	SidecarEnvVars = declareValue(&Value[api.EnvVars]{Setting: &Setting{Name: "sidecar-env-vars",
		Description: "Extra environment of the sidecar.",
		Annotation:  api.AnnotationSidecarEnvVars, Merges: true,
		Env: runtime + "INJECTOR_SIDECAR_CONTAINER_ENV_VARS", EnvForm: api.FormEnvVarsOrKumas,
		Chart: "dataPlane.envVars", Form: api.FormEnvVars},
		Parse: api.ParseEnvVars})

	SidecarDrainTime = declareValue(&Value[time.Duration]{Setting: &Setting{Name: "sidecar-drain-time",
		Description: "How long the sidecar drains connections when stopping.",
		Annotation:  api.AnnotationSidecarDrainTime,
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME", Default: api.DefaultDrainTime.String(),
		Chart: "dataPlane.drainTime", Form: api.FormDuration},
		Parse: api.ParseDuration})

	InitFirst = declareValue(&Value[bool]{Setting: &Setting{Name: "init-first",
		Description: "Place kuma-init before the pod's own init containers.",
		Annotation:  api.AnnotationInitFirst, Default: "false", Form: api.FormSwitch},
		Parse: api.ParseSwitch})

	// TransparentProxyConfigMap's annotation names the pod's own ConfigMap, read over the
	// cluster's: annotations over the pod's ConfigMap over the cluster's over the variables.
	TransparentProxyConfigMap = declareValue(&Value[string]{Setting: &Setting{Name: "transparent-proxy-configmap",
		Description: "ConfigMap whose " + api.ConfigMapKey + " holds transparent-proxy settings in Kuma's format: the cluster's in the control plane's namespace; a pod's, in its own namespace, read over it.",
		Annotation:  api.AnnotationTransparentProxyConfigMap, Merges: true,
		Env: runtime + "INJECTOR_TRANSPARENT_PROXY_CONFIGMAP_NAME", Default: api.DefaultTransparentProxyConfigMap,
		Chart: "dataPlane.transparentProxyConfigMap", Form: api.FormObjectName},
		Parse: api.ParseObjectName})

	ContainerPatches = declareValue(&Value[[]string]{Setting: &Setting{Name: "container-patches",
		Description: "ContainerPatch objects (kuma.io/v1alpha1) of the control plane's namespace applied to the sidecar and init containers; a missing one refuses the pod.",
		Annotation:  api.AnnotationContainerPatches, Merges: true,
		Env:   runtime + "INJECTOR_CONTAINER_PATCHES",
		Chart: "dataPlane.containerPatches", Form: api.FormPatchNames},
		Parse: api.ParsePatchNames})

	ApplicationProbeProxyPort = declareValue(&Value[uint16]{Setting: &Setting{Name: "application-probe-proxy-port",
		Description: "Sidecar port serving the app's rewritten probes; 0 excludes probe ports from redirection instead.",
		Annotation:  api.AnnotationApplicationProbeProxyPort,
		Env:         runtime + "APPLICATION_PROBE_PROXY_PORT", Default: itoa(api.DefaultApplicationProbeProxyPort),
		Chart: "dataPlane.applicationProbeProxyPort", Form: api.FormOptionalPort},
		Parse: api.ParseOptionalPort})

	SidecarConcurrency = declareValue(&Value[uint32]{Setting: &Setting{Name: "sidecar-concurrency",
		Description: "Envoy's worker threads (kuma-dp run --concurrency).",
		Annotation:  api.AnnotationSidecarConcurrency,
		Default:     "the sidecar's CPU limit in whole cores, at least 2; none without a limit", Form: api.FormConcurrency},
		Parse: api.ParseConcurrency})

	// EnvoyAdminPort is also where kubelet probes the readiness of kuma-dp before 2.14.
	EnvoyAdminPort = declareValue(&Value[uint16]{Setting: &Setting{Name: "envoy-admin-port",
		Description: "Port of Envoy's admin, which the control plane also serves the sidecar's readiness on.",
		Annotation:  api.AnnotationEnvoyAdminPort, Default: itoa(api.DefaultEnvoyAdminPort), Form: api.FormPort},
		Parse: api.ParsePort})

	EnvoyLogLevel = declareValue(&Value[string]{Setting: &Setting{Name: "envoy-log-level",
		Description: "Envoy's log level (KUMA_DATAPLANE_RUNTIME_ENVOY_LOG_LEVEL of kuma-dp).",
		Annotation:  api.AnnotationEnvoyLogLevel, Default: "kuma-dp's", Form: api.FormEnvoyLogLevel},
		Parse: api.ParseEnvoyLogLevel})

	EnvoyComponentLogLevel = declareValue(&Value[string]{Setting: &Setting{Name: "envoy-component-log-level",
		Description: "Log levels of Envoy's components (KUMA_DATAPLANE_RUNTIME_ENVOY_COMPONENT_LOG_LEVEL of kuma-dp).",
		Annotation:  api.AnnotationEnvoyComponentLogLevel, Form: api.FormEnvoyComponentLogLevel},
		Parse: api.ParseEnvoyComponentLogLevel})

	ServiceAccountTokenVolume = declareValue(&Value[string]{Setting: &Setting{Name: "service-account-token-volume",
		Description: "The pod's volume holding the service-account token kuma-dp authenticates with.",
		Annotation:  api.AnnotationServiceAccountTokenVolume,
		Default:     "the app's token mount, or one of the sidecar's own when the pod turns automounting off", Form: api.FormVolumeName},
		Parse: api.ParseVolumeName})
)

// Settings of the injector alone, read from its environment; package config parses them.
var (
	SystemNamespace = declare(&Setting{Name: "system-namespace",
		Description: "The injector's own namespace; its pods are never injected.",
		Env:         runtime + "SYSTEM_NAMESPACE", EnvAliases: []string{"KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE"},
		Default: "kuma-system", Form: api.FormNamespace})

	ControlPlaneURL = declare(&Setting{Name: "control-plane-url",
		Description: "Where sidecars reach the control plane (KUMA_CONTROL_PLANE_URL of kuma-dp).",
		Env:         runtime + "CONTROL_PLANE_URL", Default: "https://kuma-control-plane.kuma-system:5678",
		Chart: "dataPlane.controlPlaneURL", Form: api.FormURL})

	AdmissionServerPort = declare(&Setting{Name: "admission-server-port",
		Description: "Port of the webhook's HTTPS server.",
		Env:         runtime + "ADMISSION_SERVER_PORT", Default: "5443",
		Chart: "controlPlane.admissionServerPort", Form: api.FormPort})

	AdmissionServerCertDir = declare(&Setting{Name: "admission-server-cert-dir",
		Description: "Directory with the webhook's tls.crt and tls.key; reloaded when they change.",
		Env:         runtime + "ADMISSION_SERVER_CERT_DIR", Default: "/var/run/secrets/kuma.io/tls-cert", Form: api.FormDir})

	CNIEnabled = declare(&Setting{Name: "cni-enabled",
		Description: "The CNI plugin installs the rules: no kuma-init, a validation container instead.",
		Env:         runtime + "INJECTOR_CNI_ENABLED", Default: "false", Chart: "cni.enabled", Form: api.FormBool})

	SidecarImage = declare(&Setting{Name: "sidecar-image",
		Description: "Image of kuma-sidecar.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_IMAGE", Default: "docker.io/kumahq/kuma-dp:2.14.3",
		Chart: "dataPlane.image", Form: api.FormImage})

	// KumaDPVersion decides kuma-dp's flags, variables and readiness port, which differ between
	// the supported versions.
	KumaDPVersion = declare(&Setting{Name: "kuma-dp-version",
		Description: "The version of kuma-dp the sidecar image holds, which decides its flags, variables and readiness port.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION",
		Chart:       "dataPlane.kumaDPVersion", Form: api.FormKumaDPVersion})

	// CACertFile's chart value mounts a Secret's or ConfigMap's key: the chart sets the variable
	// to the mounted file itself.
	CACertFile = declare(&Setting{Name: "ca-cert-file",
		Description: "A PEM file with the control plane's CA, read at start, which kuma-dp checks the control plane's certificate with (KUMA_CONTROL_PLANE_CA_CERT).",
		Env:         runtime + "INJECTOR_CA_CERT_FILE", Form: api.FormCACertFile})

	SidecarUID = declare(&Setting{Name: "sidecar-uid",
		Description: "UID of kuma-sidecar; its traffic is never redirected, so no app container may use it.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_UID", Default: itoa(api.DefaultSidecarUID),
		Chart: "dataPlane.uid", Form: api.FormSidecarUID})

	SidecarGID = declare(&Setting{Name: "sidecar-gid",
		Description: "GID of kuma-sidecar.",
		// Kuma's own variable has this typo.
		Env: runtime + "INJECTOR_SIDECAR_CONTAINER_GID", EnvAliases: []string{runtime + "INJECTOR_SIDECAR_CONTAINER_GUI"},
		Default: itoa(api.DefaultSidecarGID), Chart: "dataPlane.gid", Form: api.FormGID})

	SidecarRequestsCPU = declare(&Setting{Name: "sidecar-requests-cpu",
		Description: "CPU request of kuma-sidecar.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU",
		EnvAliases:  []string{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU"},
		Default:     "50m", Chart: "dataPlane.resources.requests.cpu", Form: api.FormQuantity})

	SidecarRequestsMemory = declare(&Setting{Name: "sidecar-requests-memory",
		Description: "Memory request of kuma-sidecar.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY",
		EnvAliases:  []string{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_MEMORY"},
		Default:     "64Mi", Chart: "dataPlane.resources.requests.memory", Form: api.FormQuantity})

	SidecarLimitsCPU = declare(&Setting{Name: "sidecar-limits-cpu",
		Description: "CPU limit of kuma-sidecar.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU",
		EnvAliases:  []string{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_CPU"},
		Default:     "1000m", Chart: "dataPlane.resources.limits.cpu", Form: api.FormQuantity})

	SidecarLimitsMemory = declare(&Setting{Name: "sidecar-limits-memory",
		Description: "Memory limit of kuma-sidecar.",
		Env:         runtime + "INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY",
		EnvAliases:  []string{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY"},
		Default:     "512Mi", Chart: "dataPlane.resources.limits.memory", Form: api.FormQuantity})

	// InitImage's chart value is an image of meshinit's, <registry>/<repository>:<tag>: the chart
	// composes the variable itself.
	InitImage = declare(&Setting{Name: "init-image",
		Description: "Image of kuma-init.",
		Env:         runtime + "INJECTOR_INIT_CONTAINER_IMAGE", EnvAliases: []string{"KUMA_INJECTOR_INIT_CONTAINER_IMAGE"},
		Default: "ghcr.io/meshinit/kuma-init:0.1.0", Form: api.FormImage})

	InitPrivileged = declare(&Setting{Name: "init-privileged",
		Description: "Run kuma-init fully privileged, where a platform does not grant NET_ADMIN and NET_RAW alone.",
		Env:         runtime + "INJECTOR_INIT_CONTAINER_PRIVILEGED", Default: "false",
		Chart: "dataPlane.initContainerPrivileged", Form: api.FormBool})

	// ExceptionsLabels' chart value may be set empty, for no exceptions: the chart says so itself.
	ExceptionsLabels = declare(&Setting{Name: "exceptions-labels",
		Description: "Pods with any of these labels are never injected (OpenShift's build and deployer pods by default).",
		Env:         runtime + "EXCEPTIONS_LABELS", Default: "openshift.io/build.name:*,openshift.io/deployer-pod-for.name:*",
		Form: api.FormLabels})

	NodeTaintControllerEnabled = declare(&Setting{Name: "node-taint-controller-enabled",
		Description: "Taint nodes NodeReadiness:NoSchedule until a ready CNI pod runs on them.",
		Env:         runtime + "NODE_TAINT_CONTROLLER_ENABLED", Default: "false",
		Chart: "cni.taintController.enabled", Form: api.FormBool})

	NodeTaintControllerCNIApp = declare(&Setting{Name: "node-taint-controller-cni-app",
		Description: "The app label of the CNI DaemonSet's pods.",
		Env:         runtime + "NODE_TAINT_CONTROLLER_CNI_APP", Default: "kuma-cni", Form: api.FormLabelValue})

	NodeTaintControllerCNINamespace = declare(&Setting{Name: "node-taint-controller-cni-namespace",
		Description: "Namespace of the CNI DaemonSet's pods.",
		Env:         runtime + "NODE_TAINT_CONTROLLER_CNI_NAMESPACE", Default: "kube-system",
		Chart: "cni.namespace", Form: api.FormNamespace})

	// NodeTaintControllerNodeSelector's chart value is the DaemonSet's node selector, a map: the
	// chart spells it as a selector itself.
	NodeTaintControllerNodeSelector = declare(&Setting{Name: "node-taint-controller-node-selector",
		Description: "The nodes the CNI DaemonSet runs on, as its node selector says; other nodes are never tainted.",
		Env:         runtime + "NODE_TAINT_CONTROLLER_NODE_SELECTOR", Form: api.FormSelector})

	// NodeTaintControllerTaintKey's value is also the taint the chart's MutatingAdmissionPolicy
	// puts on nodes at registration.
	NodeTaintControllerTaintKey = declare(&Setting{Name: "node-taint-controller-taint-key",
		Description: "Key of the NoSchedule taint that keeps pods off a node until kuma-cni is ready there.",
		Env:         runtime + "NODE_TAINT_CONTROLLER_TAINT_KEY", Default: "NodeReadiness",
		Chart: "cni.taintController.taintKey", Form: "a taint key such as NodeReadiness or example.com/cni-not-ready"})

	// CNIRepairEnabled is install-cni's: each node's repairs the pods of its node.
	CNIRepairEnabled = declare(&Setting{Name: "cni-repair-enabled",
		Description:   "Recreate the pods that kuma-cni could not set up or whose validation failed, when a controller owns them; mark the others with an event and a condition.",
		InstallCNIEnv: "CNI_REPAIR_ENABLED", Default: "true", Chart: "cni.repair.enabled", Form: api.FormBool})
)

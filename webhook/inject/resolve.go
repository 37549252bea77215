package inject

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/config"
)

// Source says where a setting's value came from.
type Source string

const (
	SourceAnnotation Source = "annotation"
	SourceLabel      Source = "label"
	SourceCluster    Source = "cluster default"
	SourceBuiltIn    Source = "built-in"
	// SourceDerived marks values the injector adds itself, such as the ports of probes.
	SourceDerived Source = "derived"
)

// Setting is one resolved setting, for logs: its name (an annotation or label), value and source.
type Setting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source Source `json:"source"`
}

// resolved is what a pod's annotations and labels, over the cluster's defaults, make of it.
type resolved struct {
	tp             *api.TransparentProxyConfig
	mesh           string
	drainTime      time.Duration
	envVars        api.EnvVars
	initFirst      bool
	probeProxyPort uint16
	settings       []Setting
	warnings       []string
}

// resolver reads one pod's annotations, recording where each value came from and every error.
type resolver struct {
	cfg         *config.Config
	annotations map[string]string
	errs        api.FieldErrors
	settings    []Setting
}

// read returns the annotation's value parsed, or the default when the annotation is absent; env
// names the setting the default comes from, empty for a built-in default.
func read[T any](r *resolver, key string, parse func(string) (T, error), def T, env string) T {
	if text, ok := r.annotations[key]; ok {
		v, err := parse(text)
		if r.errs.Add(key, err) {
			return def
		}
		r.settings = append(r.settings, Setting{key, text, SourceAnnotation})
		return v
	}
	source := SourceBuiltIn
	if env != "" && r.cfg.FromEnvironment(env) {
		source = SourceCluster
	}
	r.settings = append(r.settings, Setting{key, fmt.Sprint(def), source})
	return def
}

// resolve turns the pod's annotations and labels, and its namespace's labels, into the effective
// configuration. Every malformed value is reported at once, each naming its annotation.
func (in *Injector) resolve(pod *corev1.Pod, nsLabels map[string]string, probePorts api.PortRanges) (*resolved, error) {
	cfg := in.Config
	sc := cfg.Injector.SidecarContainer
	traffic := cfg.SidecarTraffic
	r := &resolver{cfg: cfg, annotations: pod.Annotations}
	const env = "KUMA_RUNTIME_KUBERNETES_"

	tp := api.DefaultTransparentProxyConfig()
	tp.KumaDPUser = strconv.FormatInt(sc.UID, 10)
	tp.IPFamilyMode = read(r, api.AnnotationIPFamilyMode, api.ParseIPFamilyMode, sc.IPFamilyMode, env+"INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE")
	tp.Redirect.Inbound.Enabled = !read(r, api.AnnotationGateway, api.ParseSwitch, false, "")
	tp.Redirect.Inbound.Port = sc.RedirectPortInbound
	inboundPorts := read(r, api.AnnotationExcludeInboundPorts, api.ParsePortRanges, traffic.ExcludeInboundPorts, env+"SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS")
	tp.Redirect.Inbound.ExcludeIPs = read(r, api.AnnotationExcludeInboundIPs, api.ParseCIDRs, traffic.ExcludeInboundIPs, env+"SIDECAR_TRAFFIC_EXCLUDE_INBOUND_IPS")
	tp.Redirect.Outbound.Port = sc.RedirectPortOutbound
	tp.Redirect.Outbound.ExcludePorts = read(r, api.AnnotationExcludeOutboundPorts, api.ParsePortRanges, traffic.ExcludeOutboundPorts, env+"SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS")
	tp.Redirect.Outbound.ExcludeIPs = read(r, api.AnnotationExcludeOutboundIPs, api.ParseCIDRs, traffic.ExcludeOutboundIPs, env+"SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS")
	tp.Redirect.Outbound.ExcludePortsForUIDs = read(r, api.AnnotationExcludeOutboundPortsForUIDs, api.ParsePortsForUIDsList, api.PortsForUIDsList{}, "")
	// On Kubernetes all DNS is redirected, as Kuma does: the CNI plugin cannot read the pod's
	// resolv.conf, and kuma-init and the plugin must install the same rules.
	tp.Redirect.DNS.Enabled = read(r, api.AnnotationBuiltinDNS, api.ParseSwitch, cfg.Injector.BuiltinDNS.Enabled, env+"INJECTOR_BUILTIN_DNS_ENABLED")
	tp.Redirect.DNS.CaptureAll = tp.Redirect.DNS.Enabled
	tp.Redirect.DNS.Port = read(r, api.AnnotationBuiltinDNSPort, api.ParsePort, cfg.Injector.BuiltinDNS.Port, env+"INJECTOR_BUILTIN_DNS_PORT")
	tp.DropInvalidPackets = read(r, api.AnnotationDropInvalidPackets, api.ParseBool, false, "")
	tp.IPTablesLogs = read(r, api.AnnotationIPTablesLogs, api.ParseBool, false, "")
	tp.ReachableServices = read(r, api.AnnotationReachableServices, api.ParseServices, api.Services{}, "")

	res := &resolved{tp: tp}
	res.drainTime = read(r, api.AnnotationSidecarDrainTime, api.ParseDuration, sc.DrainTime, env+"INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME")
	res.envVars = read(r, api.AnnotationSidecarEnvVars, api.ParseEnvVars, api.EnvVars{}, "")
	res.initFirst = read(r, api.AnnotationInitFirst, api.ParseBool, false, "")
	res.probeProxyPort = read(r, api.AnnotationApplicationProbeProxyPort, api.ParseOptionalPort, cfg.Injector.ApplicationProbeProxyPort, env+"APPLICATION_PROBE_PROXY_PORT")
	res.mesh = r.mesh(pod.Labels, nsLabels)
	r.checkListeners(tp, res.probeProxyPort)

	// Kubelet reaches the sidecar's readiness endpoint, and the probes the sidecar serves or the
	// application's own probe ports, on the pod's address: redirected to the proxy, they would
	// fail whenever the proxy is not ready.
	derived := api.PortRanges{{First: api.SidecarReadinessPort, Last: api.SidecarReadinessPort}}
	if res.probeProxyPort != 0 {
		derived = append(derived, api.PortRange{First: res.probeProxyPort, Last: res.probeProxyPort})
	} else {
		derived = append(derived, probePorts...)
	}
	tp.Redirect.Inbound.ExcludePorts = append(slices.Clone(inboundPorts), derived...)
	r.settings = append(r.settings, Setting{"excluded inbound ports of the sidecar and probes", derived.String(), SourceDerived})

	if err := r.errs.Err(); err != nil {
		return nil, &Denial{Reason: ReasonInvalidAnnotation, Message: err.Error()}
	}
	if err := tp.Validate(); err != nil {
		return nil, &Denial{Reason: ReasonInvalidAnnotation, Message: inAnnotations(err).Error()}
	}
	res.settings = r.settings
	res.warnings = warnings(pod, tp, inboundPorts, r.annotations)
	return res, nil
}

// checkListeners refuses an annotation that puts the application probe proxy, or the DNS server,
// on the port of another of the sidecar's listeners: the configuration's validation keeps the
// redirect ports and the DNS server apart, but knows neither the probe proxy nor the readiness
// endpoint.
func (r *resolver) checkListeners(tp *api.TransparentProxyConfig, probeProxyPort uint16) {
	const accepted = "a port no other sidecar listener uses"
	dns := tp.Redirect.DNS.Enabled
	probeText, probeAnnotated := r.given(api.AnnotationApplicationProbeProxyPort)
	if probeAnnotated && probeProxyPort != 0 {
		for _, l := range []struct {
			name string
			port uint16
			on   bool
		}{
			{"the sidecar's inbound redirect port", tp.Redirect.Inbound.Port, true},
			{"the sidecar's outbound redirect port", tp.Redirect.Outbound.Port, true},
			{"the sidecar's DNS port", tp.Redirect.DNS.Port, dns},
			{"the sidecar's readiness port", api.SidecarReadinessPort, true},
		} {
			if l.on && l.port == probeProxyPort {
				r.errs.Add(api.AnnotationApplicationProbeProxyPort, &api.FieldError{Value: probeText, Problem: "is also " + l.name,
					Accepted: accepted + ", or 0 for off"})
				break
			}
		}
	}
	dnsText, dnsAnnotated := r.given(api.AnnotationBuiltinDNSPort)
	if !dnsAnnotated || !dns {
		return
	}
	switch port := tp.Redirect.DNS.Port; {
	case port == api.SidecarReadinessPort:
		r.errs.Add(api.AnnotationBuiltinDNSPort, &api.FieldError{Value: dnsText, Problem: "is also the sidecar's readiness port", Accepted: accepted})
	case port == probeProxyPort && !probeAnnotated:
		r.errs.Add(api.AnnotationBuiltinDNSPort, &api.FieldError{Value: dnsText, Problem: "is also the application probe proxy's port", Accepted: accepted})
	}
}

// given returns an annotation's text, and whether it set its setting: it is there and parsed.
func (r *resolver) given(key string) (string, bool) {
	text, ok := r.annotations[key]
	return text, ok && !slices.ContainsFunc(r.errs, func(e *api.FieldError) bool { return e.Field == key })
}

// mesh reads kuma.io/mesh from the pod's labels, then its namespace's.
func (r *resolver) mesh(podLabels, nsLabels map[string]string) string {
	for _, l := range []struct {
		labels map[string]string
		field  string
	}{{podLabels, "pod label " + api.LabelMesh}, {nsLabels, "namespace label " + api.LabelMesh}} {
		if v, ok := l.labels[api.LabelMesh]; ok {
			mesh, err := api.ParseMeshName(v)
			if !r.errs.Add(l.field, err) {
				r.settings = append(r.settings, Setting{api.LabelMesh, mesh, SourceLabel})
			}
			return mesh
		}
	}
	r.settings = append(r.settings, Setting{api.LabelMesh, api.DefaultMesh, SourceBuiltIn})
	return api.DefaultMesh
}

// annotationOf names, for each field of the configuration a pod can set, its annotation, so that
// a conflict found by validation names what the user wrote.
var annotationOf = map[string]string{
	"redirect.dns.port":                     api.AnnotationBuiltinDNSPort,
	"redirect.inbound.excludePorts":         api.AnnotationExcludeInboundPorts,
	"redirect.outbound.excludePorts":        api.AnnotationExcludeOutboundPorts,
	"redirect.inbound.excludeIPs":           api.AnnotationExcludeInboundIPs,
	"redirect.outbound.excludeIPs":          api.AnnotationExcludeOutboundIPs,
	"ipFamilyMode":                          api.AnnotationIPFamilyMode,
	"reachableServices":                     api.AnnotationReachableServices,
	"redirect.outbound.excludePortsForUIDs": api.AnnotationExcludeOutboundPortsForUIDs,
}

func inAnnotations(err error) error {
	errs, ok := err.(api.FieldErrors)
	if !ok {
		return err
	}
	for _, e := range errs {
		if a, ok := annotationOf[e.Field]; ok {
			e.Field = a + " (" + e.Field + ")"
		}
	}
	return errs
}

// warnings lists what is valid but likely a mistake.
func warnings(pod *corev1.Pod, tp *api.TransparentProxyConfig, inboundPorts api.PortRanges, annotations map[string]string) []string {
	var out []string
	for _, w := range tp.Warnings() {
		if field, text, ok := strings.Cut(w, ": "); ok && annotationOf[field] != "" {
			w = annotationOf[field] + ": " + text
		}
		out = append(out, w)
	}
	if _, ok := annotations[api.AnnotationExcludeInboundPorts]; ok {
		declared := declaredPorts(pod)
		for _, r := range inboundPorts {
			if !slices.ContainsFunc(declared, func(p int32) bool { return r.Contains(uint16(p)) }) {
				out = append(out, fmt.Sprintf("%s: %s is not a port any container declares", api.AnnotationExcludeInboundPorts, r))
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(annotations)) {
		if _, known := api.LookupKey(key); !known && (strings.HasPrefix(key, "kuma.io/") || strings.HasPrefix(key, "traffic.kuma.io/")) {
			out = append(out, fmt.Sprintf("annotation %s is not one meshinit reads; it has no effect", key))
		}
	}
	return out
}

func declaredPorts(pod *corev1.Pod) []int32 {
	var ports []int32
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		for _, p := range c.Ports {
			ports = append(ports, p.ContainerPort)
		}
	}
	return ports
}

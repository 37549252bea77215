package inject

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
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
	sidecar        sidecarSettings
	settings       []Setting
	warnings       []string
}

// settingsCount is how many settings resolve records: every annotation's, the mesh and the
// derived ports; the list is made at its size, as each admission logs it (BenchmarkHandler).
var settingsCount = sync.OnceValue(func() int {
	n := 2
	for _, s := range settings.All {
		if s.Annotation != "" {
			n++
		}
	}
	return n
})

// resolver reads one pod's annotations, recording where each value came from and every error.
type resolver struct {
	cfg         *config.Config
	annotations map[string]string
	errs        api.FieldErrors
	settings    []Setting
	warnings    []string
}

// read returns the setting's annotation parsed, or the cluster's value when the pod has none,
// recording where the value came from.
func read[T any](r *resolver, s *settings.Value[T], cluster T) T {
	if text, ok := r.annotations[s.Annotation]; ok {
		v, err := s.AnnotationParser()(text)
		if r.errs.Add(s.Annotation, err) {
			return cluster
		}
		if !s.EmptyKeepsCluster || reflect.ValueOf(v).Len() > 0 {
			r.settings = append(r.settings, Setting{s.Annotation, text, SourceAnnotation})
			if w, ok := api.Deprecated(s.AnnotationFormText(), text); ok {
				r.warnings = append(r.warnings, s.Annotation+": "+w)
			}
			return v
		}
		r.emptyKeepsCluster(s.Setting, settingText(cluster))
		return cluster
	}
	source := SourceBuiltIn
	// A merging annotation adds to the cluster's value, which the pod's value here does not hold.
	if !s.Merges && r.cfg.FromEnvironment(s.Setting) {
		source = SourceCluster
	}
	r.settings = append(r.settings, Setting{s.Annotation, settingText(cluster), source})
	return cluster
}

// resolve turns the pod's annotations and labels, and its namespace's labels, into the effective
// configuration. Every malformed value is reported at once, each naming its annotation.
func (in *Injector) resolve(pod *corev1.Pod, nsLabels map[string]string, probes *appProbes) (*resolved, error) {
	cfg := in.Config
	sc := cfg.Injector.SidecarContainer
	traffic := cfg.SidecarTraffic
	r := &resolver{cfg: cfg, annotations: pod.Annotations, settings: make([]Setting, 0, settingsCount())}

	tp := api.DefaultTransparentProxyConfig()
	tp.KumaDPUser = strconv.FormatInt(sc.UID, 10)
	settings.IPFamilyMode.Set(tp, read(r, settings.IPFamilyMode, sc.IPFamilyMode))
	gateway := read(r, settings.Gateway, false)
	tp.Redirect.Inbound.Enabled = !gateway
	tp.Redirect.Inbound.Port = sc.RedirectPortInbound
	inboundPorts := read(r, settings.ExcludeInboundPorts, traffic.ExcludeInboundPorts)
	tp.Redirect.Inbound.ExcludePortsForIPs = read(r, settings.ExcludeInboundIPs, traffic.ExcludeInboundIPs)
	tp.Redirect.Outbound.Port = sc.RedirectPortOutbound
	tp.SetOutboundExcluded(read(r, settings.ExcludeOutboundPorts, traffic.ExcludeOutboundPorts))
	tp.Redirect.Outbound.ExcludePortsForIPs = read(r, settings.ExcludeOutboundIPs, traffic.ExcludeOutboundIPs)
	tp.Redirect.Outbound.ExcludePortsForUIDs = read(r, settings.ExcludeOutboundPortsForUIDs, api.PortsForUIDsList{})
	// On Kubernetes all DNS is redirected, as Kuma does: the CNI plugin cannot read the pod's
	// resolv.conf, and kuma-init and the plugin must install the same rules.
	tp.Redirect.DNS.Enabled = read(r, settings.BuiltinDNS, cfg.Injector.BuiltinDNS.Enabled)
	tp.Redirect.DNS.CaptureAll = tp.Redirect.DNS.Enabled
	tp.Redirect.DNS.Port = read(r, settings.BuiltinDNSPort, cfg.Injector.BuiltinDNS.Port)
	tp.DropInvalidPackets = read(r, settings.DropInvalidPackets, false)
	tp.Log.Enabled = read(r, settings.IPTablesLogs, false)
	tp.Meshinit.ReachableServices = read(r, settings.ReachableServices, api.Services{})

	res := &resolved{tp: tp}
	res.drainTime = read(r, settings.SidecarDrainTime, sc.DrainTime)
	res.envVars = read(r, settings.SidecarEnvVars, api.EnvVars{})
	res.initFirst = read(r, settings.InitFirst, false)
	res.probeProxyPort = read(r, settings.ApplicationProbeProxyPort, cfg.Injector.ApplicationProbeProxyPort)
	res.mesh = r.mesh(pod.Labels, nsLabels)
	res.sidecar = r.sidecar(pod, res, gateway)
	r.checkListeners(tp, res.probeProxyPort)

	// Kubelet reaches the sidecar's readiness endpoint, and the probes the sidecar serves or the
	// application's own probe ports, on the pod's address: redirected to the proxy, they would
	// fail whenever the proxy is not ready.
	derived := api.PortRanges{{First: res.sidecar.probePort, Last: res.sidecar.probePort}}
	if res.probeProxyPort != 0 {
		derived = append(derived, api.PortRange{First: res.probeProxyPort, Last: res.probeProxyPort})
	} else {
		derived = append(derived, probes.ports()...)
	}
	derived = append(derived, probes.keptPorts()...)
	tp.SetInboundExcluded(append(slices.Clone(inboundPorts), derived...))
	r.settings = append(r.settings, Setting{"excluded inbound ports of the sidecar and probes", derived.String(), SourceDerived})

	if err := r.errs.Err(); err != nil {
		return nil, &Denial{Reason: ReasonInvalidAnnotation, Message: err.Error()}
	}
	if err := tp.Validate(); err != nil {
		return nil, &Denial{Reason: ReasonInvalidAnnotation, Message: inAnnotations(err).Error()}
	}
	res.settings = r.settings
	res.warnings = append(r.warnings, warnings(pod, tp, inboundPorts, r.annotations)...)
	return res, nil
}

// checkListeners refuses an annotation that puts the application probe proxy, or the DNS server,
// on the port of another of the sidecar's listeners: the configuration's validation keeps the
// redirect ports and the DNS server apart, but knows neither the probe proxy nor the readiness
// endpoint.
func (r *resolver) checkListeners(tp *api.TransparentProxyConfig, probeProxyPort uint16) {
	const accepted = "a port no other sidecar listener uses"
	dns := tp.Redirect.DNS.Enabled
	probeText, probeAnnotated := r.given(settings.ApplicationProbeProxyPort.Annotation)
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
				r.errs.Add(settings.ApplicationProbeProxyPort.Annotation, &api.FieldError{Value: probeText, Problem: "is also " + l.name,
					Accepted: accepted + ", or 0 for off"})
				break
			}
		}
	}
	dnsText, dnsAnnotated := r.given(settings.BuiltinDNSPort.Annotation)
	if !dnsAnnotated || !dns {
		return
	}
	switch port := tp.Redirect.DNS.Port; {
	case port == api.SidecarReadinessPort:
		r.errs.Add(settings.BuiltinDNSPort.Annotation, &api.FieldError{Value: dnsText, Problem: "is also the sidecar's readiness port", Accepted: accepted})
	case port == probeProxyPort && !probeAnnotated:
		r.errs.Add(settings.BuiltinDNSPort.Annotation, &api.FieldError{Value: dnsText, Problem: "is also the application probe proxy's port", Accepted: accepted})
	}
}

// given returns an annotation's text, and whether it set its setting: it is there and parsed.
func (r *resolver) given(key string) (string, bool) {
	text, ok := r.annotations[key]
	return text, ok && !slices.ContainsFunc(r.errs, func(e *api.FieldError) bool { return e.Field == key })
}

// mesh reads kuma.io/mesh from the pod's labels, then, as kuma-dp before 3.0 does, its
// annotations, then its namespace's labels.
func (r *resolver) mesh(podLabels, nsLabels map[string]string) string {
	annotations := r.annotations
	if r.cfg.Injector.SidecarContainer.KumaDPVersion.AtLeast(3, 0) {
		annotations = nil
	} else if _, ok := annotations[api.LabelMesh]; ok {
		r.warnings = append(r.warnings, meshAnnotationWarning(podLabels))
	}
	for _, l := range []struct {
		labels map[string]string
		field  string
		source Source
	}{
		{podLabels, "pod label " + api.LabelMesh, SourceLabel},
		{annotations, "pod annotation " + api.LabelMesh, SourceAnnotation},
		{nsLabels, "namespace label " + api.LabelMesh, SourceLabel},
	} {
		if v, ok := l.labels[api.LabelMesh]; ok {
			mesh, err := api.ParseMeshName(v)
			if !r.errs.Add(l.field, err) {
				r.settings = append(r.settings, Setting{api.LabelMesh, mesh, l.source})
			}
			return mesh
		}
	}
	r.settings = append(r.settings, Setting{api.LabelMesh, api.DefaultMesh, SourceBuiltIn})
	return api.DefaultMesh
}

// inAnnotations names, in the errors of validating a pod's configuration, the annotation of each
// field a pod can set, so that a conflict found by validation names what the user wrote.
func inAnnotations(err error) error {
	errs, ok := err.(api.FieldErrors)
	if !ok {
		return err
	}
	errs.Rename(annotationOf)
	return errs
}

// annotationOf spells a document field as the annotation that sets it, with its path.
func annotationOf(field string) string {
	if s, ok := settings.ByField(field); ok && s.Annotation != "" {
		return s.Annotation + " (" + field + ")"
	}
	return field
}

// warnings lists what is valid but likely a mistake.
func warnings(pod *corev1.Pod, tp *api.TransparentProxyConfig, inboundPorts api.PortRanges, annotations map[string]string) []string {
	var out []string
	for _, w := range tp.Warnings() {
		if field, text, ok := strings.Cut(w, ": "); ok {
			if s, ok := settings.ByField(field); ok && s.Annotation != "" {
				w = s.Annotation + ": " + text
			}
		}
		out = append(out, w)
	}
	if _, ok := annotations[settings.ExcludeInboundPorts.Annotation]; ok {
		declared := declaredPorts(pod)
		for _, r := range inboundPorts {
			if !slices.ContainsFunc(declared, func(p int32) bool { return r.Contains(uint16(p)) }) {
				out = append(out, fmt.Sprintf("%s: %s is not a port any container declares", settings.ExcludeInboundPorts.Annotation, r))
			}
		}
	}
	var unknown []string
	for key := range annotations {
		if _, known := settings.LookupKey(key); !known && (strings.HasPrefix(key, "kuma.io/") || strings.HasPrefix(key, "traffic.kuma.io/")) {
			unknown = append(unknown, key)
		}
	}
	slices.Sort(unknown)
	for _, key := range unknown {
		out = append(out, fmt.Sprintf("annotation %s is not one meshinit reads; it has no effect", key))
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

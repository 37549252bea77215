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
	// networks is Multus's networks annotation with kuma-cni listed, in CNI mode.
	networks string
	sidecar  sidecarSettings
	// sidecarPatch and initPatch are the pod's ContainerPatch operations, the cluster's first.
	sidecarPatch, initPatch []api.JSONPatchOperation
	settings                []Setting
	warnings                []string
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

// resolver reads one pod's annotations and ConfigMaps, recording where each value came from and
// every error.
type resolver struct {
	cfg         *config.Config
	cluster     Cluster
	annotations map[string]string
	// givenBy says which ConfigMap gave a document field, by its path.
	givenBy  map[string]Source
	errs     api.FieldErrors
	settings []Setting
	warnings []string
}

// annotation returns the setting's annotation, unless the pod has none or an empty one: an empty
// annotation falls back to the cluster's value, as in Kuma.
func (r *resolver) annotation(s *settings.Setting) (string, bool) {
	text, ok := r.annotations[s.Annotation]
	return text, ok && strings.TrimSpace(text) != ""
}

// read returns the setting's annotation parsed, or the cluster's value when the pod has none,
// recording where the value came from. An empty annotation keeps the cluster's value, as in Kuma;
// one that reads as an empty list does too where the setting says so.
func read[T any](r *resolver, s *settings.Value[T], cluster T) T {
	text, ok := r.annotation(s.Setting)
	if ok {
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
	}
	if _, given := r.annotations[s.Annotation]; given && s.EmptyKeepsCluster {
		r.emptyKeepsCluster(s.Setting, settingText(cluster))
		return cluster
	}
	r.settings = append(r.settings, Setting{s.Annotation, settingText(cluster), r.source(s.Setting)})
	return cluster
}

// readField reads a setting of the document: its annotation over what the configuration holds,
// and sets it there.
func readField[T any](r *resolver, s *settings.Value[T], tp *api.TransparentProxyConfig) T {
	v := read(r, s, s.Get(tp))
	s.Set(tp, v)
	return v
}

// source says where a setting's value comes from when the pod's annotation does not set it.
func (r *resolver) source(s *settings.Setting) Source {
	if by, ok := r.givenBy[s.Field]; ok && s.Field != "" {
		return by
	}
	// A merging annotation adds to the cluster's value, which the pod's value here does not hold.
	if !s.Merges && r.cfg.FromEnvironment(s) {
		return SourceCluster
	}
	return SourceBuiltIn
}

// clusterDocument is the configuration of a pod that neither ConfigMaps nor annotations change:
// the built-in defaults under the injector's KUMA_RUNTIME_* settings.
func clusterDocument(cfg *config.Config) *api.TransparentProxyConfig {
	sc := cfg.Injector.SidecarContainer
	traffic := cfg.SidecarTraffic
	tp := api.DefaultTransparentProxyConfig()
	tp.SetFamily(sc.IPFamilyMode)
	tp.Redirect.Inbound.Port = sc.RedirectPortInbound
	tp.SetInboundExcluded(traffic.ExcludeInboundPorts)
	tp.Redirect.Inbound.ExcludePortsForIPs = traffic.ExcludeInboundIPs
	tp.Redirect.Outbound.Port = sc.RedirectPortOutbound
	tp.SetOutboundExcluded(traffic.ExcludeOutboundPorts)
	tp.Redirect.Outbound.ExcludePortsForIPs = traffic.ExcludeOutboundIPs
	tp.Redirect.DNS.Enabled = cfg.Injector.BuiltinDNS.Enabled
	tp.Redirect.DNS.Port = cfg.Injector.BuiltinDNS.Port
	tp.SetBackend(cfg.Injector.TransparentProxyBackend)
	return tp
}

// resolve turns the pod's annotations and labels, its namespace's labels, and Kuma's ConfigMaps
// into the effective configuration: annotations over the pod's ConfigMap over the cluster's over
// the KUMA_RUNTIME_* settings over the built-in defaults. Every malformed value is reported at
// once, each naming its annotation or ConfigMap.
func (in *Injector) resolve(pod *corev1.Pod, nsLabels map[string]string, probes *appProbes) (*resolved, error) {
	cfg := in.Config
	sc := cfg.Injector.SidecarContainer
	r := &resolver{cfg: cfg, cluster: in.cluster(), annotations: pod.Annotations, givenBy: map[string]Source{},
		settings: make([]Setting, 0, settingsCount())}

	layers := []layer{{namespace: cfg.SystemNamespace, name: cfg.Injector.TransparentProxyConfigMap}}
	if own, ok := r.annotation(settings.TransparentProxyConfigMap.Setting); ok {
		name, err := settings.TransparentProxyConfigMap.Parse(strings.TrimSpace(own))
		if !r.errs.Add(api.AnnotationTransparentProxyConfigMap, err) {
			layers = append(layers, layer{namespace: pod.Namespace, name: name, required: true})
			r.settings = append(r.settings, Setting{api.AnnotationTransparentProxyConfigMap, name, SourceAnnotation})
		}
	}
	tp, err := r.readLayers(clusterDocument(cfg), layers)
	if err != nil {
		return nil, err
	}
	r.pin(tp, sc.UID)

	readField(r, settings.IPFamilyMode, tp)
	gateway := read(r, settings.Gateway, false)
	if gateway {
		tp.Redirect.Inbound.Enabled = false
	}
	inboundPorts := readField(r, settings.ExcludeInboundPorts, tp)
	readField(r, settings.ExcludeInboundIPs, tp)
	readField(r, settings.ExcludeOutboundPorts, tp)
	readField(r, settings.ExcludeOutboundIPs, tp)
	readField(r, settings.ExcludeOutboundPortsForUIDs, tp)
	readField(r, settings.BuiltinDNS, tp)
	// On Kubernetes all DNS is redirected, as Kuma does: the CNI plugin cannot read the pod's
	// resolv.conf, and kuma-init and the plugin must install the same rules.
	tp.Redirect.DNS.CaptureAll = tp.Redirect.DNS.Enabled
	readField(r, settings.BuiltinDNSPort, tp)
	readField(r, settings.DropInvalidPackets, tp)
	readField(r, settings.IPTablesLogs, tp)
	readField(r, settings.ReachableServices, tp)

	res := &resolved{tp: tp}
	res.drainTime = read(r, settings.SidecarDrainTime, sc.DrainTime)
	res.envVars = read(r, settings.SidecarEnvVars, api.EnvVars{})
	res.initFirst = read(r, settings.InitFirst, false)
	res.probeProxyPort = read(r, settings.ApplicationProbeProxyPort, cfg.Injector.ApplicationProbeProxyPort)
	res.mesh = r.mesh(pod.Labels, nsLabels)
	if own := read(r, settings.ContainerPatches, nil); len(own) > 0 || len(cfg.Injector.ContainerPatches) > 0 {
		if res.sidecarPatch, res.initPatch, err = in.patches(r, own); err != nil {
			return nil, err
		}
	}
	res.sidecar = r.sidecar(pod, res, gateway)
	r.checkListeners(tp, res.probeProxyPort)
	if cfg.Injector.CNIEnabled {
		var err error
		res.networks, err = withKumaCNI(pod.Annotations[api.AnnotationMultusNetworks], pod.Namespace)
		r.errs.Add(api.AnnotationMultusNetworks, err)
	}

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

// pin sets what a pod's configuration must say whatever a ConfigMap says, and warns where one said
// otherwise: the proxy's user is the sidecar's UID, whose traffic the rules exempt; a pod's rules
// are installed for real, inside the pod; and CNI mode is the injector's.
func (r *resolver) pin(tp *api.TransparentProxyConfig, uid int64) {
	pins := []struct {
		field string
		given bool
		set   func()
	}{
		{tp.Path(&tp.KumaDPUser), tp.KumaDPUser != strconv.FormatInt(uid, 10), func() { tp.KumaDPUser = strconv.FormatInt(uid, 10) }},
		{tp.Path(&tp.DryRun), tp.DryRun, func() { tp.DryRun = false }},
		{tp.Path(&tp.StoreFirewalld), tp.StoreFirewalld, func() { tp.StoreFirewalld = false }},
		{tp.Path(&tp.CNIMode), tp.CNIMode != r.cfg.Injector.CNIEnabled, func() { tp.CNIMode = r.cfg.Injector.CNIEnabled }},
	}
	for _, p := range pins {
		if by, ok := r.givenBy[p.field]; ok && p.given {
			r.warnings = append(r.warnings, fmt.Sprintf("%s %s: %s is ignored: on Kubernetes the injector decides it", by, api.ConfigMapKey, p.field))
		}
		p.set()
	}
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
	if strings.TrimSpace(annotations[settings.ExcludeInboundPorts.Annotation]) != "" {
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

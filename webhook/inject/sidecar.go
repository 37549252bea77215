package inject

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/admitted"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/config"
)

// sidecarSettings are what a pod's annotations say of kuma-sidecar itself, beside the rules.
type sidecarSettings struct {
	// concurrency is Envoy's worker threads; 0 gives kuma-dp no --concurrency.
	concurrency uint32
	adminPort   uint16
	// probePort is where kubelet probes kuma-dp's readiness, and the inbound rules let it through.
	probePort              uint16
	envoyLogLevel          string
	envoyComponentLogLevel string
	// tokenVolume is the pod's volume of kuma.io/service-account-token-volume, or empty.
	tokenVolume string
}

// sidecar reads the annotations of kuma-sidecar itself, and checks what the rules assume of it: a
// gateway has no application probe proxy, and the sidecar's environment may not move what the
// rules point at.
func (r *resolver) sidecar(pod *corev1.Pod, res *resolved, gateway bool) sidecarSettings {
	sc := r.cfg.Injector.SidecarContainer
	s := sidecarSettings{
		concurrency:            read(r, settings.SidecarConcurrency, concurrency(pod, sc.Resources.LimitsCPU.MilliValue())),
		adminPort:              read(r, settings.EnvoyAdminPort, uint16(api.DefaultEnvoyAdminPort)),
		envoyLogLevel:          read(r, settings.EnvoyLogLevel, ""),
		envoyComponentLogLevel: read(r, settings.EnvoyComponentLogLevel, ""),
		tokenVolume:            read(r, settings.ServiceAccountTokenVolume, ""),
	}
	// kuma-dp 2.14 serves its readiness on the pod's address itself; before, only kuma-cp's Envoy
	// admin listener does, which forwards to kuma-dp's readiness on the loopback.
	s.probePort = s.adminPort
	if sc.KumaDPVersion.AtLeast(2, 14) {
		s.probePort = api.SidecarReadinessPort
	}
	if s.tokenVolume != "" && !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == s.tokenVolume }) {
		r.errs.Add(settings.ServiceAccountTokenVolume.Annotation, &api.FieldError{Value: s.tokenVolume,
			Problem: "names no volume of the pod", Accepted: api.FormVolumeName})
	}
	if gateway {
		// Kubelet reaches a gateway's probes directly: its inbound traffic is not redirected.
		if text, ok := r.given(settings.ApplicationProbeProxyPort.Annotation); ok && res.probeProxyPort != 0 {
			r.errs.Add(settings.ApplicationProbeProxyPort.Annotation, &api.FieldError{Value: text,
				Problem:  "turns the application probe proxy on for a gateway (" + api.AnnotationGateway + "), whose probes kubelet reaches directly",
				Accepted: "0, or no annotation, on a gateway"})
		}
		res.probeProxyPort = 0
	}
	r.checkSidecarPorts(res.tp, res.probeProxyPort, s.adminPort)
	r.checkSidecarEnv(res, s.probePort)
	r.warnPrivilegedPorts(pod, res, s.adminPort)
	r.warnDrainTime(pod, res)
	return s
}

// unprivilegedPortStart is the sysctl below which only a process with CAP_NET_BIND_SERVICE may
// listen.
const unprivilegedPortStart = "net.ipv4.ip_unprivileged_port_start"

// warnPrivilegedPorts warns of a port below 1024 the pod gives a sidecar listener: kuma-dp runs
// as the sidecar's UID with no capability, so it may listen there only where the runtime lets
// every user listen on such ports (containerd 2.0 and later do by default, as Docker does) or the
// pod's sysctl does. A warning, not a refusal: on those runtimes the pod works.
func (r *resolver) warnPrivilegedPorts(pod *corev1.Pod, res *resolved, adminPort uint16) {
	start := uint64(1024)
	if pod.Spec.SecurityContext != nil {
		for _, sc := range pod.Spec.SecurityContext.Sysctls {
			if v, err := strconv.ParseUint(strings.TrimSpace(sc.Value), 10, 16); sc.Name == unprivilegedPortStart && err == nil {
				start = v
			}
		}
	}
	for _, l := range []struct {
		annotation string
		port       uint16
		on         bool
		what       string
	}{
		{settings.BuiltinDNSPort.Annotation, res.tp.Redirect.DNS.Port, res.tp.Redirect.DNS.Enabled, "its DNS server"},
		{settings.ApplicationProbeProxyPort.Annotation, res.probeProxyPort, res.probeProxyPort != 0, "its application probe proxy"},
		{settings.EnvoyAdminPort.Annotation, adminPort, true, "Envoy's admin listener"},
	} {
		if _, given := r.given(l.annotation); !given || !l.on || uint64(l.port) >= start {
			continue
		}
		r.warnings = append(r.warnings, fmt.Sprintf("%s: %d is a privileged port (below %d), on which kuma-dp, running as UID %d with no "+
			"capability, can listen only where the container runtime lets any user (containerd 2.0 and later do by default) or the "+
			"pod's sysctl %s is %d or lower; elsewhere %s does not start", l.annotation, l.port, start,
			r.cfg.Injector.SidecarContainer.UID, unprivilegedPortStart, l.port, l.what))
	}
}

// warnDrainTime warns of a drain time longer than the pod's grace period: kubelet kills the
// sidecar when the grace period ends, before it has drained. The sidecar's environment may set
// it too, as in Kuma, and then has the last word.
func (r *resolver) warnDrainTime(pod *corev1.Pod, res *resolved) {
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	drain, from := res.drainTime, settings.SidecarDrainTime.Annotation
	if _, given := r.given(from); !given {
		from = "the cluster's " + settings.SidecarDrainTime.Env
	}
	for _, env := range []struct {
		field string
		vars  api.EnvVars
	}{{"the cluster's " + settings.SidecarEnvVars.Env, r.cfg.Injector.SidecarContainer.EnvVars}, {settings.SidecarEnvVars.Annotation, res.envVars}} {
		for _, v := range env.vars {
			if d, err := time.ParseDuration(strings.TrimSpace(v.Value)); v.Name == "KUMA_DATAPLANE_DRAIN_TIME" && err == nil {
				drain, from = d, "KUMA_DATAPLANE_DRAIN_TIME of "+env.field
			}
		}
	}
	if drain <= time.Duration(grace)*time.Second {
		return
	}
	r.warnings = append(r.warnings, fmt.Sprintf("the sidecar's drain time, %s (%s), is longer than the pod's terminationGracePeriodSeconds, %d: "+
		"kubelet kills the sidecar before it has drained its connections; give the pod a grace period at least as long, or a shorter drain time",
		drain, from, grace))
}

// concurrency is Envoy's worker threads by the sidecar's CPU limit, as Kuma counts them: whole
// cores, at least 2 so that one blocked worker does not stall the proxy; none without a limit,
// which the sidecar has not when the pod sets resources for all its containers at once.
func concurrency(pod *corev1.Pod, limitMilliCPU int64) uint32 {
	if pod.Spec.Resources != nil || limitMilliCPU <= 0 {
		return 0
	}
	return uint32(min(max(limitMilliCPU/1000, 2), math.MaxUint32))
}

// checkSidecarPorts refuses an annotated port that kuma-dp would refuse, or that would put Envoy's
// admin, or the Envoy DNS server of kuma-dp before 2.11, on the port of another of the sidecar's
// listeners (checkListeners and the configuration's validation compare the others).
func (r *resolver) checkSidecarPorts(tp *api.TransparentProxyConfig, probeProxyPort, adminPort uint16) {
	v := r.cfg.Injector.SidecarContainer.KumaDPVersion
	dns := tp.Redirect.DNS
	if text, ok := r.given(settings.BuiltinDNSPort.Annotation); ok && dns.Enabled {
		r.errs.Add(settings.BuiltinDNSPort.Annotation, inText(text, config.CheckKumaDPPort(dns.Port, v, true)))
	}
	if text, ok := r.given(settings.ApplicationProbeProxyPort.Annotation); ok {
		r.errs.Add(settings.ApplicationProbeProxyPort.Annotation, inText(text, config.CheckKumaDPPort(probeProxyPort, v, false)))
	}
	type listener struct {
		name       string
		port       uint16
		on         bool
		annotation string
	}
	var room [7]listener // on the stack: every admission checks these
	listeners := append(room[:0],
		listener{"the sidecar's inbound redirect port", tp.Redirect.Inbound.Port, true, ""},
		listener{"the sidecar's outbound redirect port", tp.Redirect.Outbound.Port, true, ""},
		listener{"the sidecar's DNS port", dns.Port, dns.Enabled, settings.BuiltinDNSPort.Annotation},
		listener{"the sidecar's readiness port", api.SidecarReadinessPort, true, ""},
		listener{"the application probe proxy's port", probeProxyPort, probeProxyPort != 0, settings.ApplicationProbeProxyPort.Annotation},
	)
	checked := [2]listener{{"Envoy's admin port", adminPort, true, settings.EnvoyAdminPort.Annotation}}
	if dns.Enabled && !v.AtLeast(2, 11) && dns.Port <= math.MaxUint16-config.EnvoyDNSPortOffset {
		checked[1] = listener{"the Envoy DNS port of kuma-dp before 2.11, two above the DNS port",
			dns.Port + config.EnvoyDNSPortOffset, true, settings.BuiltinDNSPort.Annotation}
	}
	for _, c := range checked {
		if !c.on {
			continue
		}
		for _, l := range listeners {
			if !l.on || l.port != c.port {
				continue
			}
			// The annotation that made them meet is the one to change.
			blamed, other := c, l
			if _, ok := r.given(c.annotation); !ok {
				blamed, other = l, c
			}
			text, ok := r.given(blamed.annotation)
			if !ok || slices.ContainsFunc(r.errs, func(e *api.FieldError) bool { return e.Field == blamed.annotation }) {
				continue
			}
			problem := "is also " + other.name
			if blamed == c && c.annotation == settings.BuiltinDNSPort.Annotation { // the Envoy DNS port, which the DNS port moves
				problem = fmt.Sprintf("puts %s on %d, which is also %s", c.name, c.port, other.name)
			}
			r.errs.Add(blamed.annotation, &api.FieldError{Value: text, Problem: problem, Accepted: "a port no other sidecar listener uses"})
		}
		listeners = append(listeners, c)
	}
}

// inText quotes the annotation's text, rather than the number read from it, in err.
func inText(text string, err error) error {
	if fe, ok := err.(*api.FieldError); ok {
		fe.Value = text
	}
	return err
}

// checkSidecarEnv refuses variables of the cluster's or the pod's sidecar environment that would
// change what the rules and the rewritten probes assume of kuma-dp: its mesh, its DNS server and
// probe proxy, where it reports readiness, and the transparent-proxy configuration it reports.
func (r *resolver) checkSidecarEnv(res *resolved, probePort uint16) {
	if len(r.cfg.Injector.SidecarContainer.EnvVars) == 0 && len(res.envVars) == 0 {
		return
	}
	owned := r.ownedEnv(res, probePort)
	for _, source := range []struct {
		field, text string
		vars        api.EnvVars
	}{
		{settings.SidecarEnvVars.Env, r.cfg.Injector.SidecarContainer.EnvVars.String(), r.cfg.Injector.SidecarContainer.EnvVars},
		{settings.SidecarEnvVars.Annotation, r.annotations[settings.SidecarEnvVars.Annotation], res.envVars},
	} {
		for _, v := range source.vars {
			o, ok := owned[v.Name]
			if !ok || o.agrees(v.Value) || o.podOnly && source.field == settings.SidecarEnvVars.Env {
				continue
			}
			r.errs.Add(source.field, &api.FieldError{Value: source.text, Token: v.Name + "=" + v.Value,
				Problem: o.problem(v.Value), Accepted: "no " + v.Name + ": " + o.setBy})
		}
	}
}

// ownedVar is a variable of kuma-dp's that the injector sets from the pod's settings.
type ownedVar struct {
	// want is its value; empty when no value is right, and agree when the setter accepts more.
	want    string
	agree   func(string) bool
	problem func(got string) string
	// setBy says where to set it instead.
	setBy string
	// podOnly: only the pod's annotation is refused it; the cluster's operator, who chooses the
	// control plane and its credentials, may set it for every sidecar.
	podOnly bool
}

func (o ownedVar) agrees(got string) bool {
	if o.agree != nil {
		return o.agree(got)
	}
	return o.want != "" && strings.TrimSpace(got) == o.want
}

// ownedEnv lists the variables of kuma-dp the injector sets from the pod's settings, by name.
func (r *resolver) ownedEnv(res *resolved, probePort uint16) map[string]ownedVar {
	dns := res.tp.Redirect.DNS
	port := func(what string, want uint16, setBy string) ownedVar {
		return ownedVar{want: strconv.Itoa(int(want)), setBy: setBy, problem: func(got string) string {
			if want == 0 {
				return fmt.Sprintf("would turn on %s, which is off for this pod", what)
			}
			return fmt.Sprintf("would move %s to %s, but the pod's rules and probes expect it on %d", what, strings.TrimSpace(got), want)
		}}
	}
	readiness := "kuma-dp's readiness port is " + strconv.Itoa(api.SidecarReadinessPort)
	if probePort == api.SidecarReadinessPort {
		readiness += ", which the sidecar's probes use"
	}
	owned := map[string]ownedVar{
		"KUMA_DATAPLANE_MESH": {want: res.mesh, setBy: "the pod's label " + api.LabelMesh + " says the mesh", problem: func(got string) string {
			return fmt.Sprintf("would put the sidecar in mesh %q, but the pod is in mesh %q", got, res.mesh)
		}},
		"KUMA_DNS_ENABLED": {setBy: api.AnnotationBuiltinDNS + " says it", agree: func(got string) bool {
			on, err := strconv.ParseBool(strings.TrimSpace(got))
			return err == nil && on == dns.Enabled
		}, problem: func(string) string {
			if dns.Enabled {
				return "would turn off the sidecar's DNS server, to which the rules send the pod's DNS"
			}
			return "would turn on the sidecar's DNS server, to which the rules send nothing"
		}},
		"KUMA_READINESS_PORT":               port("kuma-dp's readiness endpoint", api.SidecarReadinessPort, readiness),
		"KUMA_APPLICATION_PROBE_PROXY_PORT": port("the application probe proxy", res.probeProxyPort, api.AnnotationApplicationProbeProxyPort+" says it"),
		"KUMA_DATAPLANE_RUNTIME_TRANSPARENT_PROXY": {setBy: "the pod's annotations and the cluster's settings make it", problem: func(string) string {
			return "would replace the transparent-proxy configuration kuma-dp reports to the control plane, which must be the rules'"
		}},
	}
	// What kuma-dp tells the control plane it is, and whom it trusts: the pod's own fields, the
	// cluster's control plane and its CA, the pod's service-account token.
	fromPod := func(what string) ownedVar {
		return ownedVar{podOnly: true, setBy: "kubelet sets it from the pod", problem: func(string) string {
			return "would replace the pod's own " + what + ", by which kuma-dp names its Dataplane to the control plane"
		}}
	}
	owned["POD_NAME"], owned["POD_NAMESPACE"], owned["INSTANCE_IP"] = fromPod("name"), fromPod("namespace"), fromPod("address")
	owned["KUMA_CONTROL_PLANE_URL"] = ownedVar{want: r.cfg.ControlPlaneURL, podOnly: true, setBy: "the cluster's " + settings.ControlPlaneURL.Env + " says it",
		problem: func(got string) string {
			return fmt.Sprintf("would connect the sidecar to %s, not to the cluster's control plane at %s", strings.TrimSpace(got), r.cfg.ControlPlaneURL)
		}}
	for _, name := range []string{"KUMA_CONTROL_PLANE_CA_CERT", "KUMA_CONTROL_PLANE_CA_CERT_FILE"} {
		owned[name] = ownedVar{podOnly: true, setBy: "the cluster's " + settings.CACertFile.Env + " says it", problem: func(string) string {
			return "would change the CA the sidecar trusts the control plane by"
		}}
	}
	owned["KUMA_DATAPLANE_RUNTIME_TOKEN_PATH"] = ownedVar{want: tokenMountPath + "/token", podOnly: true,
		setBy: "the sidecar authenticates with the pod's service-account token (" + api.AnnotationServiceAccountTokenVolume + " names another volume)",
		problem: func(string) string {
			return "would make the sidecar authenticate to the control plane with another token than the pod's service account's"
		}}
	owned[admitted.Env] = ownedVar{setBy: "the injector writes it", problem: func(string) string {
		return "would replace the digest of the configuration the injector admitted, which kuma-cni and kuma-init check the pod's configuration against"
	}}
	if dns.Enabled {
		dnsEnv(r.cfg.Injector.SidecarContainer.KumaDPVersion, dns.Port, func(name string, p uint16) {
			what := "the sidecar's DNS server"
			if name == "KUMA_DNS_ENVOY_DNS_PORT" {
				what = "the Envoy DNS server behind it"
			}
			owned[name] = port(what, p, api.AnnotationBuiltinDNSPort+" says it")
		})
	}
	return owned
}

// dnsEnv gives each port of kuma-dp's DNS servers to set, by the variable that version reads:
// before 2.11, CoreDNS, where the rules send DNS, and Envoy's DNS behind it; since, the embedded
// proxy.
func dnsEnv(v config.Version, port uint16, set func(name string, port uint16)) {
	if v.AtLeast(2, 11) {
		set("KUMA_DNS_PROXY_PORT", port)
		return
	}
	set("KUMA_DNS_CORE_DNS_PORT", port)
	set("KUMA_DNS_ENVOY_DNS_PORT", port+config.EnvoyDNSPortOffset)
}

// emptyKeepsCluster records that an empty exclusion annotation keeps the cluster's exclusions,
// as Kuma 3.0 reads it, and warns where that differs from Kuma 2.14's default mode, which reads it
// as no exclusions.
func (r *resolver) emptyKeepsCluster(s *settings.Setting, cluster string) {
	r.settings = append(r.settings, Setting{s.Annotation, cluster, r.source(s)})
	if cluster != "" {
		r.warnings = append(r.warnings, fmt.Sprintf("%s: an empty value keeps the cluster's %s, as Kuma 3.0 reads it (Kuma 2.14's injector read it as none)",
			s.Annotation, cluster))
	}
}

// settingText spells a setting's value for the logs, as fmt.Sprint does, without allocating for
// the booleans and strings most settings are: each admission logs every setting
// (BenchmarkHandler).
func settingText(v any) string {
	switch v := v.(type) {
	case bool:
		return strconv.FormatBool(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

// meshAnnotationWarning says how kuma-dp before 3.0 reads a kuma.io/mesh annotation.
func meshAnnotationWarning(podLabels map[string]string) string {
	if _, ok := podLabels[api.LabelMesh]; ok {
		return "annotation " + api.LabelMesh + " has no effect: the pod's label wins"
	}
	return "annotation " + api.LabelMesh + " is deprecated, as in Kuma 2.9-2.14 (3.0 ignores it): label the pod instead"
}

package inject

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshinit/meshinit/api"
)

// Kubelet probes the pod's address from the node, without mTLS. With the application probe proxy
// on, each HTTP, TCP and gRPC probe of a container that starts after kuma-sidecar is rewritten
// into an HTTP probe of the proxy in kuma-dp, which probes the app from inside the pod; its routes
// and headers are kuma-dp's: /<port><path>, /tcp/<port>, /grpc/<port>, and the headers below.
// kuma-dp 2.14 and later take HTTPS only from the scheme header's exact value HTTPS, and earlier
// ones skip verifying the app's certificate only for it. With the proxy off (port 0), the probes'
// ports are excluded from inbound redirection instead.
const (
	headerScheme      = "X-Kuma-Probes-Scheme"
	headerTimeout     = "X-Kuma-Probes-Timeout"
	headerHost        = "X-Kuma-Probes-Host"
	headerGRPCService = "X-Kuma-Probes-GRPC-Service"
)

// appProbe is one HTTP, TCP or gRPC probe of an app container, with its port as a number.
type appProbe struct {
	probe     *corev1.Probe
	port      int32
	kind      string
	container string
}

type appProbes struct {
	// list are the probes rewritten when the proxy is on; kept are the probes of the app's native
	// sidecars that start before kuma-sidecar (classic layout), which the proxy cannot serve yet.
	list, kept []appProbe
	warnings   []string
}

// collectProbes finds the probes of the containers that start after kuma-sidecar, in the pod
// given, so that rewrite changes them in place: the app's containers, and, with native sidecars,
// the app's own native sidecars, which Kuma's layout puts after kuma-sidecar. In the classic
// layout these start before it: rewritten, their startup would wait for a proxy that starts only
// after them.
func (in *Injector) collectProbes(pod *corev1.Pod) *appProbes {
	ps := &appProbes{}
	add := func(c *corev1.Container, kept bool) {
		for _, p := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}, {"startup", c.StartupProbe}} {
			if p.probe == nil {
				continue
			}
			port, ok, err := probePort(c, p.probe.ProbeHandler)
			switch {
			case err != nil:
				ps.warnings = append(ps.warnings, fmt.Sprintf("the %s probe of container %q is left as it is: %v", p.kind, c.Name, err))
			case ok && kept:
				ps.kept = append(ps.kept, appProbe{probe: p.probe, port: port, kind: p.kind, container: c.Name})
			case ok:
				ps.list = append(ps.list, appProbe{probe: p.probe, port: port, kind: p.kind, container: c.Name})
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		if c := &pod.Spec.InitContainers[i]; isNativeSidecar(c) {
			add(c, !in.NativeSidecars)
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i], false)
	}
	return ps
}

func isNativeSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// probePort returns the port a probe connects to; ok is false for exec probes. A port out of
// range is an error: the probe is left as it is, for the API server to refuse, since rewritten it
// would point at the proxy's valid port and pass validation.
func probePort(c *corev1.Container, h corev1.ProbeHandler) (port int32, ok bool, err error) {
	var p intstr.IntOrString
	switch {
	case h.HTTPGet != nil:
		p = h.HTTPGet.Port
	case h.TCPSocket != nil:
		p = h.TCPSocket.Port
	case h.GRPC != nil:
		p = intstr.FromInt32(h.GRPC.Port)
	default:
		return 0, false, nil
	}
	port = p.IntVal
	if p.Type == intstr.String {
		i := slices.IndexFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.StrVal })
		if i < 0 {
			return 0, false, fmt.Errorf("its port %q names no port of the container", p.StrVal)
		}
		port = c.Ports[i].ContainerPort
	}
	if port < 1 || port > 65535 {
		return 0, false, fmt.Errorf("its port %d is out of range 1-65535", port)
	}
	return port, true, nil
}

// ports lists the distinct ports of the probes rewritten when the proxy is on, in order.
func (ps *appProbes) ports() api.PortRanges { return portsOf(ps.list) }

// keptPorts lists the distinct ports of the probes never rewritten: kubelet reaches them directly.
func (ps *appProbes) keptPorts() api.PortRanges { return portsOf(ps.kept) }

func portsOf(probes []appProbe) api.PortRanges {
	var out api.PortRanges
	for _, p := range probes {
		r := api.PortRange{First: uint16(p.port), Last: uint16(p.port)}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b api.PortRange) int { return int(a.First) - int(b.First) })
	return out
}

// rewrite points every probe at the application probe proxy; a probe of the proxy's own port
// cannot be told apart from the proxy, and refuses the pod, as in Kuma.
func (ps *appProbes) rewrite(proxyPort uint16) error {
	for _, p := range ps.list {
		if p.port == int32(proxyPort) {
			return &Denial{Reason: ReasonProbePort, Message: fmt.Sprintf(
				"the %s probe of container %q is on port %d, which is the application probe proxy's (%s): the proxy cannot probe it; "+
					"accepted: a probe on another port, or %s set to a port no container uses",
				p.kind, p.container, p.port, api.AnnotationApplicationProbeProxyPort, api.AnnotationApplicationProbeProxyPort)}
		}
	}
	for _, p := range ps.list {
		h := &p.probe.ProbeHandler
		get := &corev1.HTTPGetAction{Port: intstr.FromInt32(int32(proxyPort)), Scheme: corev1.URISchemeHTTP}
		switch {
		case h.HTTPGet != nil:
			path := h.HTTPGet.Path
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
			get.Path = "/" + strconv.Itoa(int(p.port)) + path
			for _, header := range h.HTTPGet.HTTPHeaders {
				if strings.EqualFold(header.Name, "Host") { // kubelet's Host header, which kuma-dp passes on
					header.Name = headerHost
				}
				get.HTTPHeaders = append(get.HTTPHeaders, header)
			}
			if s := h.HTTPGet.Scheme; s != "" && s != corev1.URISchemeHTTP {
				get.HTTPHeaders = append(get.HTTPHeaders, corev1.HTTPHeader{Name: headerScheme, Value: string(s)})
			}
			if h.HTTPGet.Host != "" {
				// Kubelet would connect there, past the sidecar; kuma-dp probes the pod's address.
				ps.warnings = append(ps.warnings, fmt.Sprintf("the %s probe of container %q names host %q, which is dropped: "+
					"the application probe proxy probes the pod's own address (a Host header is passed on)", p.kind, p.container, h.HTTPGet.Host))
			}
		case h.TCPSocket != nil:
			get.Path = "/tcp/" + strconv.Itoa(int(p.port))
		case h.GRPC != nil:
			get.Path = "/grpc/" + strconv.Itoa(int(p.port))
		}
		// kuma-dp waits 1 second unless told otherwise.
		if p.probe.TimeoutSeconds > 1 {
			get.HTTPHeaders = append(get.HTTPHeaders, corev1.HTTPHeader{Name: headerTimeout, Value: strconv.Itoa(int(p.probe.TimeoutSeconds))})
		}
		if h.GRPC != nil && h.GRPC.Service != nil && *h.GRPC.Service != "" {
			get.HTTPHeaders = append(get.HTTPHeaders, corev1.HTTPHeader{Name: headerGRPCService, Value: *h.GRPC.Service})
		}
		*h = corev1.ProbeHandler{HTTPGet: get}
	}
	return nil
}

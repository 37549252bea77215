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
// on, each HTTP, TCP and gRPC probe of an app container is rewritten into an HTTP probe of the
// proxy in kuma-dp, which probes the app from inside the pod; its routes and headers are
// kuma-dp's: /<port><path>, /tcp/<port>, /grpc/<port>, x-kuma-probes-{scheme,timeout,grpc-service}.
// With the proxy off (port 0), the probes' ports are excluded from inbound redirection instead.
const (
	headerScheme      = "x-kuma-probes-scheme"
	headerTimeout     = "x-kuma-probes-timeout"
	headerGRPCService = "x-kuma-probes-grpc-service"
)

// appProbe is one HTTP, TCP or gRPC probe of an app container, with its port as a number.
type appProbe struct {
	probe *corev1.Probe
	port  int32
}

type appProbes struct {
	list     []appProbe
	warnings []string
}

// collectProbes finds the probes of the app containers, in the pod given, so that rewrite changes
// them in place.
func (in *Injector) collectProbes(pod *corev1.Pod) *appProbes {
	ps := &appProbes{}
	containers := []*corev1.Container{}
	for i := range pod.Spec.InitContainers {
		containers = append(containers, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		containers = append(containers, &pod.Spec.Containers[i])
	}
	for _, c := range containers {
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
			case ok:
				ps.list = append(ps.list, appProbe{probe: p.probe, port: port})
			}
		}
	}
	return ps
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

// ports lists the probes' distinct ports, in order.
func (ps *appProbes) ports() api.PortRanges {
	var out api.PortRanges
	for _, p := range ps.list {
		r := api.PortRange{First: uint16(p.port), Last: uint16(p.port)}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b api.PortRange) int { return int(a.First) - int(b.First) })
	return out
}

// rewrite points every probe at the application probe proxy.
func (ps *appProbes) rewrite(proxyPort uint16) {
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
			get.Host = h.HTTPGet.Host
			get.HTTPHeaders = slices.Clone(h.HTTPGet.HTTPHeaders)
			if h.HTTPGet.Scheme == corev1.URISchemeHTTPS {
				get.HTTPHeaders = append(get.HTTPHeaders, corev1.HTTPHeader{Name: headerScheme, Value: "https"})
			}
		case h.TCPSocket != nil:
			get.Path = "/tcp/" + strconv.Itoa(int(p.port))
		case h.GRPC != nil:
			get.Path = "/grpc/" + strconv.Itoa(int(p.port))
			if h.GRPC.Service != nil && *h.GRPC.Service != "" {
				get.HTTPHeaders = append(get.HTTPHeaders, corev1.HTTPHeader{Name: headerGRPCService, Value: *h.GRPC.Service})
			}
		}
		if p.probe.TimeoutSeconds > 0 {
			get.HTTPHeaders = append(get.HTTPHeaders, corev1.HTTPHeader{Name: headerTimeout, Value: strconv.Itoa(int(p.probe.TimeoutSeconds))})
		}
		*h = corev1.ProbeHandler{HTTPGet: get}
	}
}

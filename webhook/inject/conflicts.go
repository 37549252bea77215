package inject

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/config"
)

// Reasons of refusals for what the pod and its injection cannot both have.
const (
	ReasonPortOnSidecarListener = "port-on-sidecar-listener"
	ReasonDuplicateName         = "duplicate-name"
	ReasonAnnotationsTooLarge   = "annotations-too-large"
)

// sidecarListener is a port kuma-dp, or the Envoy it runs, listens on in the pod.
type sidecarListener struct {
	name string
	port uint16
	// udp: the DNS server, which takes UDP as well as TCP.
	udp bool
	// movedBy is the annotation that moves it, or "" for a cluster setting.
	movedBy string
}

// sidecarListeners are the ports the sidecar listens on in this pod, from its effective
// configuration: the redirect ports (inbound only where inbound traffic is redirected), the DNS
// server (with, before kuma-dp 2.11, Envoy's DNS two above it), kuma-dp's readiness, the
// listener on Envoy's admin port that kuma-cp makes on the pod's address, and the application
// probe proxy.
func (in *Injector) sidecarListeners(res *resolved) []sidecarListener {
	tp := res.tp
	dns := tp.Redirect.DNS
	out := make([]sidecarListener, 0, 7)
	if tp.Redirect.Inbound.Enabled {
		out = append(out, sidecarListener{name: "the sidecar's inbound redirect port", port: tp.Redirect.Inbound.Port})
	}
	out = append(out, sidecarListener{name: "the sidecar's outbound redirect port", port: tp.Redirect.Outbound.Port})
	if dns.Enabled {
		out = append(out, sidecarListener{name: "the sidecar's DNS port", port: dns.Port, udp: true, movedBy: settings.BuiltinDNSPort.Annotation})
		if !in.Config.Injector.SidecarContainer.KumaDPVersion.AtLeast(2, 11) && dns.Port <= math.MaxUint16-config.EnvoyDNSPortOffset {
			out = append(out, sidecarListener{name: "the Envoy DNS port of kuma-dp before 2.11", port: dns.Port + config.EnvoyDNSPortOffset,
				udp: true, movedBy: settings.BuiltinDNSPort.Annotation})
		}
	}
	out = append(out,
		sidecarListener{name: "the sidecar's readiness port", port: api.SidecarReadinessPort},
		sidecarListener{name: "Envoy's admin port", port: res.sidecar.adminPort, movedBy: settings.EnvoyAdminPort.Annotation})
	if res.probeProxyPort != 0 {
		out = append(out, sidecarListener{name: "the application probe proxy's port", port: res.probeProxyPort,
			movedBy: settings.ApplicationProbeProxyPort.Annotation})
	}
	return out
}

// checkAppPorts refuses a container port of the pod's on a port the sidecar listens on: the two
// cannot both listen there, and whichever starts second fails; a port the probe proxy takes is
// also one the rules leave unredirected. Kuma admits such pods, which then do not work.
func (in *Injector) checkAppPorts(pod *corev1.Pod, res *resolved) error {
	listeners := in.sidecarListeners(res)
	var numbers []int
	for _, l := range listeners {
		numbers = append(numbers, int(l.port))
	}
	slices.Sort(numbers)
	ports := make([]string, 0, len(numbers))
	for _, n := range slices.Compact(numbers) {
		ports = append(ports, strconv.Itoa(n))
	}
	var errs api.FieldErrors
	for kind, containers := range map[string][]corev1.Container{"initContainers": pod.Spec.InitContainers, "containers": pod.Spec.Containers} {
		for i, c := range containers {
			for j, p := range c.Ports {
				k := slices.IndexFunc(listeners, func(l sidecarListener) bool {
					return int32(l.port) == p.ContainerPort && (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP || l.udp && p.Protocol == corev1.ProtocolUDP)
				})
				if k < 0 {
					continue
				}
				l := listeners[k]
				accepted := "a port the sidecar does not listen on (" + strings.Join(ports, ", ") + " in this pod)"
				if l.movedBy != "" {
					accepted += ", or " + l.movedBy + " set to a port the pod does not use"
					if l.movedBy == settings.ApplicationProbeProxyPort.Annotation {
						accepted += ", or 0"
					}
				}
				errs = append(errs, &api.FieldError{Field: fmt.Sprintf("spec.%s[%d].ports[%d].containerPort", kind, i, j),
					Value: strconv.Itoa(int(p.ContainerPort)), Problem: fmt.Sprintf("of container %q is also %s: the two would listen on one port", c.Name, l.name),
					Accepted: accepted})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b *api.FieldError) int { return strings.Compare(a.Field, b.Field) })
	return &Denial{Reason: ReasonPortOnSidecarListener, Message: errs.Error()}
}

// checkNames refuses a pod whose containers or volumes share a name, among themselves or with
// those injection adds: the API server would refuse it after injection, naming what the author
// did not write. meshinit inject, which no API server checks, refuses it too.
func checkNames(pod *corev1.Pod, a added) error {
	var errs api.FieldErrors
	// A name's field is spelled only for an error: every admission checks every name.
	type named struct {
		list  string
		index int
		name  string
	}
	field := func(n named) string { return fmt.Sprintf("spec.%s[%d].name", n.list, n.index) }
	check := func(what string, items []named, ours []string) {
		for i, it := range items {
			if j := slices.IndexFunc(items[:i], func(o named) bool { return o.name == it.name }); j >= 0 {
				errs = append(errs, &api.FieldError{Field: field(it), Value: it.name, Problem: "is also " + field(items[j]),
					Accepted: "a name of its own for each " + what})
			} else if slices.Contains(ours, it.name) {
				errs = append(errs, &api.FieldError{Field: field(it), Value: it.name, Problem: "is the name of a " + what + " the injector adds",
					Accepted: "another name"})
			}
		}
	}
	items := make([]named, 0, max(len(pod.Spec.InitContainers)+len(pod.Spec.Containers), len(pod.Spec.Volumes)))
	for i, c := range pod.Spec.InitContainers {
		items = append(items, named{"initContainers", i, c.Name})
	}
	for i, c := range pod.Spec.Containers {
		items = append(items, named{"containers", i, c.Name})
	}
	ours := make([]string, 0, max(2, len(a.volumes)))
	ours = append(ours, a.sidecar.Name)
	if a.init != nil {
		ours = append(ours, a.init.Name)
	}
	check("container", items, ours)
	items = items[:0]
	for i, v := range pod.Spec.Volumes {
		items = append(items, named{"volumes", i, v.Name})
	}
	ours = ours[:0]
	for _, v := range a.volumes {
		ours = append(ours, v.Name)
	}
	check("volume", items, ours)
	if len(errs) == 0 {
		return nil
	}
	return &Denial{Reason: ReasonDuplicateName, Message: errs.Error()}
}

// maxAnnotationBytes is what the API server takes of a pod's annotations, keys and values
// together (apimachinery's TotalAnnotationSizeLimitB).
const maxAnnotationBytes = 256 << 10

// checkAnnotationSize refuses a pod whose annotations, with those injection writes (the effective
// configuration copies the exclusions the pod's own annotations list), exceed what the API server
// takes: it would refuse the pod, about annotations its author did not write.
func checkAnnotationSize(pod *corev1.Pod) error {
	total := 0
	for k, v := range pod.Annotations {
		total += len(k) + len(v)
	}
	if total <= maxAnnotationBytes {
		return nil
	}
	return &Denial{Reason: ReasonAnnotationsTooLarge, Message: fmt.Sprintf("the pod's annotations would be %d bytes once injected, "+
		"of which %s is %d, over the %d the API server takes (keys and values together); accepted: annotations the injected "+
		"configuration fits beside, such as exclusions written as fewer, wider port ranges and CIDRs", total,
		api.AnnotationTransparentProxyConfig, len(pod.Annotations[api.AnnotationTransparentProxyConfig]), maxAnnotationBytes)}
}

package inject

import (
	"cmp"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshinit/meshinit/api"
)

// Where kuma-init, kuma-sidecar and kuma-validation read the effective configuration: the
// annotation, projected by the downward API at Kuma's own path, so that Kuma's images, kuma-dp's
// --transparent-proxy-config and meshinit's read the same file.
const (
	configVolume    = "transparent-proxy-base"
	configMountPath = "/tmp/transparent-proxy/base"
	configFile      = configMountPath + "/config.yaml"

	// Each container's writable /tmp: iptables' lock, kuma-dp's Envoy bootstrap, kumactl's config.
	initTmpVolume    = "kuma-init-tmp"
	sidecarTmpVolume = "kuma-sidecar-tmp"

	// kumactl is where Kuma's kuma-init images, and meshinit's, have the program.
	kumactl = "/usr/bin/kumactl"

	// The service-account token kuma-dp authenticates to the control plane with, where kubelet
	// mounts it in every container.
	tokenMountPath = "/var/run/secrets/kubernetes.io/serviceaccount"
	tokenVolume    = "kuma-sidecar-service-account-token"
)

// added is what injection adds to a pod.
type added struct {
	// init runs before the app: kuma-init, or the validation container in CNI mode; nil for a
	// gateway in CNI mode, which has no inbound capture to prove.
	init    *corev1.Container
	sidecar corev1.Container
	volumes []corev1.Volume
}

func (in *Injector) build(pod *corev1.Pod, res *resolved) added {
	tmp := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(tmpSize)}}}
	}
	token, ownToken := tokenMount(pod, res.sidecar.tokenVolume)
	// Volumes are large: room for all of them at once.
	a := added{sidecar: in.sidecar(pod, res, token), volumes: append(make([]corev1.Volume, 0, 4),
		tmp(sidecarTmpVolume),
		corev1.Volume{Name: configVolume, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{Path: "config.yaml", FieldRef: &corev1.ObjectFieldSelector{
				FieldPath: "metadata.annotations['" + api.AnnotationTransparentProxyConfig + "']"}}}}}},
	)}
	switch {
	case !in.Config.Injector.CNIEnabled:
		a.init = ptr.To(in.initContainer(pod))
		a.volumes = append(a.volumes, tmp(initTmpVolume))
	case res.tp.Redirect.Inbound.Enabled:
		a.init = ptr.To(in.validationContainer(pod, res))
	}
	if ownToken {
		a.volumes = append(a.volumes, sidecarToken())
	}
	return a
}

// tmpSize bounds the /tmp volumes, as Kuma's do.
var tmpSize = resource.MustParse("10M")

var configMount = corev1.VolumeMount{Name: configVolume, MountPath: configMountPath, ReadOnly: true}

// validationContainer replaces kuma-init in CNI mode, where the plugin installed the rules: it
// runs Kuma's validator command line (on meshinit's image, meshinit's validation), which proves
// with real connections that the rules capture traffic and fails the pod's start fast when they
// do not. It runs as the sidecar's UID, as Kuma's does: the proxy's own connection to the pod's
// address must turn back into the inbound redirect port, which proves the inbound chain and the
// outbound chain that holds that turn, and that the rules exempt this UID, the sidecar's; as any
// other unprivileged user it could prove the outbound capture only, since no user but root can
// act as the proxy, and Kuma's validator would always fail. It needs no privilege at all.
func (in *Injector) validationContainer(pod *corev1.Pod, res *resolved) corev1.Container {
	sc := in.Config.Injector.SidecarContainer
	// kumactl's own client configuration goes to the writable /tmp.
	args := []string{"--config-file=/tmp/.kumactl"}
	if in.Config.Injector.InitContainer.KumactlBefore211 {
		args = append(args, "--ip-family-mode="+string(res.tp.IPFamilyMode),
			"--validation-server-port="+strconv.Itoa(int(res.tp.Redirect.Inbound.Port)))
	} else {
		args = append(args, "--transparent-proxy-config="+configFile)
	}
	return corev1.Container{
		Name:            ValidationName,
		Image:           in.Config.Injector.InitContainer.Image,
		Command:         []string{kumactl, "install", "transparent-proxy-validator"},
		Args:            args,
		SecurityContext: securityContext(sc.UID, sc.GID, false),
		Resources:       initResources(pod),
		VolumeMounts:    []corev1.VolumeMount{{Name: sidecarTmpVolume, MountPath: "/tmp"}, configMount},
	}
}

// initContainer is kuma-init: kumactl install transparent-proxy on the configuration projected
// from the annotation, as root with NET_ADMIN and NET_RAW only, or fully privileged where the
// platform needs it. Legacy iptables takes its lock in the writable /tmp, since the root is
// read-only.
func (in *Injector) initContainer(pod *corev1.Pod) corev1.Container {
	sc := securityContext(0, 0, true)
	if in.Config.Injector.InitContainer.Privileged {
		sc.Privileged, sc.AllowPrivilegeEscalation, sc.Capabilities = ptr.To(true), ptr.To(true), nil
	}
	// Kuma's kumactl before 2.11 takes the document itself with --config, its path with
	// --config-file.
	flag := "--config="
	if in.Config.Injector.InitContainer.KumactlBefore211 {
		flag = "--config-file="
	}
	return corev1.Container{
		Name:            InitName,
		Image:           in.Config.Injector.InitContainer.Image,
		Command:         []string{kumactl, "install", "transparent-proxy"},
		Args:            []string{flag + configFile},
		Env:             []corev1.EnvVar{{Name: "XTABLES_LOCKFILE", Value: "/tmp/xtables.lock"}},
		SecurityContext: sc,
		Resources:       initResources(pod),
		VolumeMounts:    []corev1.VolumeMount{{Name: initTmpVolume, MountPath: "/tmp"}, configMount},
	}
}

// initResources are kuma-init's; none when the pod sets resources for all its containers at once
// (spec.resources), which the API server holds every container's against.
func initResources(pod *corev1.Pod) corev1.ResourceRequirements {
	if pod.Spec.Resources != nil {
		return corev1.ResourceRequirements{}
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("20Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("50Mi")},
	}
}

// sidecar is kuma-sidecar: kuma-dp as the proxy's UID, unprivileged, started and configured as
// Kuma's injector starts the kuma-dp version it runs.
func (in *Injector) sidecar(pod *corev1.Pod, res *resolved, token *corev1.VolumeMount) corev1.Container {
	sc := in.Config.Injector.SidecarContainer
	args := append(make([]string, 0, 4), "run", "--log-level=info")
	if n := res.sidecar.concurrency; n > 0 {
		args = append(args, "--concurrency="+strconv.FormatUint(uint64(n), 10))
	}
	if sc.KumaDPVersion.AtLeast(2, 11) { // kuma-dp 2.9 and 2.10 exit on a flag they do not know
		args = append(args, "--transparent-proxy-config="+configFile)
	}
	// The readiness, liveness and startup probes, in one allocation.
	probes := new([3]struct {
		probe corev1.Probe
		get   corev1.HTTPGetAction
	})
	for i := range probes {
		p := &probes[i]
		p.get = corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(int32(res.sidecar.probePort))}
		p.probe = corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &p.get},
			InitialDelaySeconds: 1, TimeoutSeconds: 3, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 12}
	}
	probes[1].probe.InitialDelaySeconds = 60
	// The startup probe holds back the app's containers: probed every second rather than Kuma's
	// every 5 s (which costs every pod about 4 s, docs/benchmarks.md), within the same minute.
	probes[2].probe.InitialDelaySeconds, probes[2].probe.PeriodSeconds, probes[2].probe.FailureThreshold = 0, 1, 60
	c := corev1.Container{
		Name:            SidecarName,
		Image:           sc.Image,
		Args:            args,
		Env:             in.sidecarEnv(res),
		SecurityContext: securityContext(sc.UID, sc.GID, false),
		ReadinessProbe:  &probes[0].probe,
		LivenessProbe:   &probes[1].probe,
		VolumeMounts:    append(make([]corev1.VolumeMount, 0, 3), corev1.VolumeMount{Name: sidecarTmpVolume, MountPath: "/tmp"}, configMount),
	}
	if pod.Spec.Resources == nil {
		c.Resources = corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: sc.Resources.RequestsCPU, corev1.ResourceMemory: sc.Resources.RequestsMemory},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: sc.Resources.LimitsCPU, corev1.ResourceMemory: sc.Resources.LimitsMemory},
		}
	}
	if token != nil {
		c.VolumeMounts = append(c.VolumeMounts, *token)
	}
	if in.NativeSidecars {
		// The app's containers, and its init containers after the sidecar, start once the proxy
		// is ready, so their first connections already find it.
		c.StartupProbe = &probes[2].probe
	}
	return c
}

// securityContext is an injected container's security context: the user and group, nothing to
// gain, a read-only root, every capability dropped, and for kuma-init NET_ADMIN and NET_RAW back.
// Its every field is a pointer: it is made in one allocation, as each admission makes two
// (BenchmarkHandler).
func securityContext(uid, gid int64, netAdmin bool) *corev1.SecurityContext {
	v := new(struct {
		sc                            corev1.SecurityContext
		caps                          corev1.Capabilities
		uid, gid                      int64
		nonRoot, readOnly, escalation bool
		drop                          [1]corev1.Capability
		add                           [2]corev1.Capability
	})
	v.uid, v.gid, v.nonRoot, v.readOnly = uid, gid, uid != 0, true
	v.drop[0] = "ALL"
	v.caps.Drop = v.drop[:]
	if netAdmin {
		v.add = [2]corev1.Capability{"NET_ADMIN", "NET_RAW"}
		v.caps.Add = v.add[:]
	}
	v.sc = corev1.SecurityContext{RunAsUser: &v.uid, RunAsGroup: &v.gid, RunAsNonRoot: &v.nonRoot,
		ReadOnlyRootFilesystem: &v.readOnly, AllowPrivilegeEscalation: &v.escalation, Capabilities: &v.caps}
	return &v.sc
}

// tokenMount is where kuma-dp finds its service-account token: the volume the pod names, or the
// app's token, which the API server mounted in the app's containers only, or, when the pod turns
// automounting off and names none, a token of the sidecar's own (own). nil: none.
func tokenMount(pod *corev1.Pod, named string) (m *corev1.VolumeMount, own bool) {
	if named != "" {
		return &corev1.VolumeMount{Name: named, MountPath: tokenMountPath, ReadOnly: true}, false
	}
	for _, c := range pod.Spec.Containers {
		if i := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == tokenMountPath }); i >= 0 {
			return &c.VolumeMounts[i], false
		}
	}
	if pod.Spec.AutomountServiceAccountToken != nil && !*pod.Spec.AutomountServiceAccountToken {
		return &corev1.VolumeMount{Name: tokenVolume, MountPath: tokenMountPath, ReadOnly: true}, true
	}
	// With automounting on, the API server mounts a token in every container, kuma-sidecar
	// included, when the pod reaches it (meshinit inject); with it off for the account only, there
	// is none to find, as in Kuma.
	return nil, false
}

// sidecarToken is the sidecar's own token volume, as kubelet's automounted one: the account's token,
// the cluster's CA and the namespace.
func sidecarToken() corev1.Volume {
	return corev1.Volume{Name: tokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr.To[int32](0o644),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
				FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}}
}

// sidecarEnv is kuma-dp's environment, as Kuma's injector sets it for the version: its own
// variables sorted by name, then the cluster's, then the pod's kuma.io/sidecar-env-vars, each
// later one replacing an earlier one of the same name (resolve refused those that would move
// what the rules assume).
func (in *Injector) sidecarEnv(res *resolved) []corev1.EnvVar {
	tp := res.tp
	// The three references to the pod's fields, in one allocation.
	refs := new([3]struct {
		source   corev1.EnvVarSource
		selector corev1.ObjectFieldSelector
	})
	fieldRef := func(i int, path string) *corev1.EnvVarSource {
		r := &refs[i]
		r.selector.FieldPath = path
		r.source.FieldRef = &r.selector
		return &r.source
	}
	// Room for every variable of the injector's (9, up to 5 by settings, and the digest seal adds)
	// and the extra ones.
	env := make([]corev1.EnvVar, 0, 15+len(in.Config.Injector.SidecarContainer.EnvVars)+len(res.envVars))
	env = append(env,
		corev1.EnvVar{Name: "INSTANCE_IP", ValueFrom: fieldRef(0, "status.podIP")},
		// kuma-dp 2.9 proxies probes on 9001 unless told otherwise.
		corev1.EnvVar{Name: "KUMA_APPLICATION_PROBE_PROXY_PORT", Value: strconv.Itoa(int(res.probeProxyPort))},
		corev1.EnvVar{Name: "KUMA_CONTROL_PLANE_URL", Value: in.Config.ControlPlaneURL},
		corev1.EnvVar{Name: "KUMA_DATAPLANE_DRAIN_TIME", Value: res.drainTime.String()},
		corev1.EnvVar{Name: "KUMA_DATAPLANE_MESH", Value: res.mesh},
		corev1.EnvVar{Name: "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH", Value: tokenMountPath + "/token"},
		corev1.EnvVar{Name: "KUMA_DNS_ENABLED", Value: strconv.FormatBool(tp.Redirect.DNS.Enabled)},
		corev1.EnvVar{Name: "POD_NAME", ValueFrom: fieldRef(1, "metadata.name")},
		corev1.EnvVar{Name: "POD_NAMESPACE", ValueFrom: fieldRef(2, "metadata.namespace")},
	)
	if ca := in.Config.Injector.CACert; ca != "" {
		env = append(env, corev1.EnvVar{Name: "KUMA_CONTROL_PLANE_CA_CERT", Value: ca})
	}
	if l := res.sidecar.envoyLogLevel; l != "" {
		env = append(env, corev1.EnvVar{Name: "KUMA_DATAPLANE_RUNTIME_ENVOY_LOG_LEVEL", Value: l})
	}
	if l := res.sidecar.envoyComponentLogLevel; l != "" {
		env = append(env, corev1.EnvVar{Name: "KUMA_DATAPLANE_RUNTIME_ENVOY_COMPONENT_LOG_LEVEL", Value: l})
	}
	if tp.Redirect.DNS.Enabled {
		dnsEnv(in.Config.Injector.SidecarContainer.KumaDPVersion, tp.Redirect.DNS.Port, func(name string, port uint16) {
			env = append(env, corev1.EnvVar{Name: name, Value: strconv.Itoa(int(port))})
		})
		if !in.Config.Injector.SidecarContainer.KumaDPVersion.AtLeast(2, 11) {
			env = append(env, corev1.EnvVar{Name: "KUMA_DNS_CORE_DNS_BINARY_PATH", Value: "coredns"})
		}
	}
	slices.SortFunc(env, func(a, b corev1.EnvVar) int { return cmp.Compare(a.Name, b.Name) })
	for _, extra := range slices.Concat(in.Config.Injector.SidecarContainer.EnvVars, res.envVars) {
		v := corev1.EnvVar{Name: extra.Name, Value: extra.Value}
		if i := slices.IndexFunc(env, func(e corev1.EnvVar) bool { return e.Name == extra.Name }); i >= 0 {
			env[i] = v
		} else {
			env = append(env, v)
		}
	}
	return env
}

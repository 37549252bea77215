package inject

import (
	"cmp"
	"path"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/meshinit/meshinit/api"
)

// added is what injection adds to a pod.
type added struct {
	// init runs before the app (kuma-init, or the validation container in CNI mode).
	init    corev1.Container
	sidecar corev1.Container
	volumes []corev1.Volume
}

func (in *Injector) build(pod *corev1.Pod, res *resolved) added {
	a := added{sidecar: in.sidecar(res), volumes: []corev1.Volume{
		{Name: configVolume, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{Path: ConfigFile, FieldRef: &corev1.ObjectFieldSelector{
				FieldPath: "metadata.annotations['" + api.AnnotationTransparentProxyConfig + "']"}}}}}},
		{Name: tmpVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
	}}
	a.init = in.initContainer()
	if in.Config.Injector.CNIEnabled {
		a.init = in.validationContainer()
	}
	return a
}

// validationUID runs the CNI mode's validation container: nobody, neither root nor the proxy, so
// that its connections are redirected like the app's.
const validationUID = 65534

// validationContainer replaces kuma-init in CNI mode, where the plugin installed the rules: it
// proves with real connections that they capture traffic, and fails the pod's start fast when
// they do not, rather than let the app run outside the mesh. It needs no privilege at all.
func (in *Injector) validationContainer() corev1.Container {
	c := in.initContainer()
	c.Name = ValidationName
	c.Args = append([]string{"validate"}, c.Args...)
	c.SecurityContext = &corev1.SecurityContext{
		RunAsUser:                ptr.To[int64](validationUID),
		RunAsGroup:               ptr.To[int64](validationUID),
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	return c
}

// initContainer is kuma-init: root with NET_ADMIN and NET_RAW only, or fully privileged where the
// platform needs it, running on the configuration projected from the annotation.
func (in *Injector) initContainer() corev1.Container {
	sc := &corev1.SecurityContext{
		RunAsUser:                ptr.To[int64](0),
		RunAsGroup:               ptr.To[int64](0),
		RunAsNonRoot:             ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities: &corev1.Capabilities{
			Add:  []corev1.Capability{"NET_ADMIN", "NET_RAW"},
			Drop: []corev1.Capability{"ALL"},
		},
	}
	if in.Config.Injector.InitContainer.Privileged {
		sc.Privileged, sc.AllowPrivilegeEscalation, sc.Capabilities = ptr.To(true), ptr.To(true), nil
	}
	return corev1.Container{
		Name:            InitName,
		Image:           in.Config.Injector.InitContainer.Image,
		Args:            []string{"--config", path.Join(ConfigMountPath, ConfigFile)},
		SecurityContext: sc,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("20Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("50Mi")},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: configVolume, MountPath: ConfigMountPath, ReadOnly: true}},
	}
}

// sidecar is kuma-sidecar: kuma-dp as the proxy's UID, unprivileged.
func (in *Injector) sidecar(res *resolved) corev1.Container {
	sc := in.Config.Injector.SidecarContainer
	ready := &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromInt32(api.SidecarReadinessPort)}},
		InitialDelaySeconds: 1, TimeoutSeconds: 3, PeriodSeconds: 5, SuccessThreshold: 1, FailureThreshold: 12,
	}
	live := ready.DeepCopy()
	live.InitialDelaySeconds = 60
	c := corev1.Container{
		Name:  SidecarName,
		Image: sc.Image,
		Args:  []string{"run", "--log-level=info"},
		Env:   in.sidecarEnv(res),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To(sc.UID),
			RunAsGroup:               ptr.To(sc.GID),
			RunAsNonRoot:             ptr.To(true),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		ReadinessProbe: ready,
		LivenessProbe:  live,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: sc.Resources.RequestsCPU, corev1.ResourceMemory: sc.Resources.RequestsMemory},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: sc.Resources.LimitsCPU, corev1.ResourceMemory: sc.Resources.LimitsMemory},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: tmpVolume, MountPath: "/tmp"}},
	}
	if in.NativeSidecars {
		// The app containers start once the sidecar has started, so their first connections
		// already find the proxy.
		c.StartupProbe = ready.DeepCopy()
		c.StartupProbe.SuccessThreshold = 1
	}
	return c
}

// sidecarEnv is kuma-dp's environment: its own variables sorted by name, then the cluster's, then
// the pod's kuma.io/sidecar-env-vars, each later one replacing an earlier one of the same name.
func (in *Injector) sidecarEnv(res *resolved) []corev1.EnvVar {
	tp := res.tp
	fieldRef := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	env := []corev1.EnvVar{
		{Name: "INSTANCE_IP", ValueFrom: fieldRef("status.podIP")},
		{Name: "KUMA_CONTROL_PLANE_URL", Value: in.Config.ControlPlaneURL},
		{Name: "KUMA_DATAPLANE_DRAIN_TIME", Value: res.drainTime.String()},
		{Name: "KUMA_DATAPLANE_MESH", Value: res.mesh},
		{Name: "KUMA_DATAPLANE_RUNTIME_TOKEN_PATH", Value: "/var/run/secrets/kubernetes.io/serviceaccount/token"},
		{Name: "KUMA_DNS_ENABLED", Value: strconv.FormatBool(tp.Redirect.DNS.Enabled)},
		{Name: "KUMA_READINESS_PORT", Value: strconv.Itoa(api.SidecarReadinessPort)},
		{Name: "POD_NAME", ValueFrom: fieldRef("metadata.name")},
		{Name: "POD_NAMESPACE", ValueFrom: fieldRef("metadata.namespace")},
	}
	if tp.Redirect.DNS.Enabled {
		env = append(env, corev1.EnvVar{Name: "KUMA_DNS_PROXY_PORT", Value: strconv.Itoa(int(tp.Redirect.DNS.Port))})
	}
	if res.probeProxyPort != 0 {
		env = append(env, corev1.EnvVar{Name: "KUMA_APPLICATION_PROBE_PROXY_PORT", Value: strconv.Itoa(int(res.probeProxyPort))})
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

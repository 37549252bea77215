package injection

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/initcontainer/cli"
	"github.com/meshinit/meshinit/webhook"
	"github.com/meshinit/meshinit/webhook/inject"
)

func container(t *testing.T, cs []corev1.Container, name string) corev1.Container {
	t.Helper()
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	if i < 0 {
		t.Fatalf("no container %s in %v", name, names(cs))
	}
	return cs[i]
}

func envOf(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestPiecesAgree reads an injected pod as the API server stored it and checks that kuma-init, run
// with its injected arguments on the file the downward API projects, applies exactly the
// configuration of the annotation, and that the sidecar's user, DNS and probe settings are the
// ones that configuration expects.
func TestPiecesAgree(t *testing.T) {
	e := shared.Get(t)
	p := pod(namespace(t, enabled), nil, map[string]string{
		api.AnnotationExcludeInboundPorts:         "22",
		api.AnnotationExcludeOutboundIPs:          "169.254.169.254",
		api.AnnotationBuiltinDNSPort:              "16053",
		api.AnnotationExcludeOutboundPortsForUIDs: "tcp:22:1000",
	})
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
		HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(8080)}}}
	if err := e.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	doc := p.Annotations[api.AnnotationTransparentProxyConfig]
	want, err := api.ParseTransparentProxyConfig([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}

	// The downward API projects the annotation into the file kuma-init's command line names.
	initC := container(t, p.Spec.InitContainers, inject.InitName)
	projected := ""
	for _, m := range initC.VolumeMounts {
		if i := slices.IndexFunc(p.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name && v.DownwardAPI != nil }); i >= 0 {
			item := p.Spec.Volumes[i].DownwardAPI.Items[0]
			if item.FieldRef.FieldPath != "metadata.annotations['"+api.AnnotationTransparentProxyConfig+"']" {
				t.Errorf("the volume projects %s", item.FieldRef.FieldPath)
			}
			projected = filepath.Join(m.MountPath, item.Path)
		}
	}
	if want := []string{"/usr/bin/kumactl", "install", "transparent-proxy"}; !slices.Equal(initC.Command, want) {
		t.Errorf("kuma-init runs %v, not Kuma's %v", initC.Command, want)
	}
	args := slices.Clone(initC.Args)
	i := slices.Index(args, "--config="+projected)
	if projected == "" || i < 0 {
		t.Fatalf("kuma-init's arguments %v do not read the projected file %q", args, projected)
	}
	local := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(local, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	args[i] = "--config=" + local
	// kuma-init's flags, as its commands define them.
	fs := pflag.NewFlagSet("kuma-init", pflag.ContinueOnError)
	flags := cli.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	got, err := flags.Config(t.Context(), cli.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kuma-init would apply\n%#v\nbut the annotation says\n%#v", got, want)
	}

	sidecar := container(t, p.Spec.InitContainers, inject.SidecarName)
	if uid := strconv.FormatInt(*sidecar.SecurityContext.RunAsUser, 10); uid != want.KumaDPUser {
		t.Errorf("the sidecar runs as %s, the rules exempt %s", uid, want.KumaDPUser)
	}
	if envOf(sidecar, "KUMA_DNS_ENABLED") != strconv.FormatBool(want.Redirect.DNS.Enabled) ||
		envOf(sidecar, "KUMA_DNS_PROXY_PORT") != strconv.Itoa(int(want.Redirect.DNS.Port)) {
		t.Errorf("sidecar DNS env %q/%q, rules redirect DNS %v to %d", envOf(sidecar, "KUMA_DNS_ENABLED"),
			envOf(sidecar, "KUMA_DNS_PROXY_PORT"), want.Redirect.DNS.Enabled, want.Redirect.DNS.Port)
	}
	for what, port := range map[string]int{
		"the sidecar's readiness probe":     sidecar.ReadinessProbe.HTTPGet.Port.IntValue(),
		"KUMA_APPLICATION_PROBE_PROXY_PORT": atoi(envOf(sidecar, "KUMA_APPLICATION_PROBE_PROXY_PORT")),
	} {
		if !want.InboundExcluded().Contains(uint16(port)) {
			t.Errorf("%s, %d, is redirected inbound, so kubelet could not reach it", what, port)
		}
	}
	if !slices.Contains(sidecar.Args, "--transparent-proxy-config="+projected) {
		t.Errorf("kuma-dp's arguments %v do not read the projected file %s", sidecar.Args, projected)
	}
	probe := container(t, p.Spec.Containers, "app").ReadinessProbe.HTTPGet
	if probe.Port.String() != envOf(sidecar, "KUMA_APPLICATION_PROBE_PROXY_PORT") || probe.Path != "/8080/healthz" {
		t.Errorf("the app's probe goes to %s%s, not through the sidecar's probe proxy", probe.Port.String(), probe.Path)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// metric is the injector's metric name whose labels include want; nil when there is none (its
// getters then give zeros).
func metric(t *testing.T, name string, want map[string]string) *dto.Metric {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			matches := true
			for k, v := range want {
				matches = matches && labels[k] == v
			}
			if matches {
				return m
			}
		}
	}
	return nil
}

// admissions counts the injector's answers with a result and reason.
func admissions(t *testing.T, result, reason string) float64 {
	t.Helper()
	return metric(t, "sidecar_injection_total", map[string]string{"result": result, "reason": reason}).GetCounter().GetValue()
}

// TestUnmeshedPodsNeverReachTheInjector: the registration's selectors keep the API server from
// calling the injector for pods that cannot be injected, so they never wait for it, and an
// injector that is down cannot block them.
func TestUnmeshedPodsNeverReachTheInjector(t *testing.T) {
	e := shared.Get(t)
	before := admissions(t, webhook.ResultSkipped, inject.ReasonNotEnabled)
	for range 3 {
		if err := e.Client.Create(t.Context(), pod(namespace(t, nil), nil, nil)); err != nil {
			t.Fatal(err)
		}
	}
	if after := admissions(t, webhook.ResultSkipped, inject.ReasonNotEnabled); after != before {
		t.Errorf("the injector answered %v admissions for pods of unlabelled namespaces", after-before)
	}
	if err := e.Client.Create(t.Context(), pod(namespace(t, nil), disabled, nil)); err != nil {
		t.Fatal(err)
	}
	if admissions(t, webhook.ResultSkipped, inject.ReasonDisabledByPodLabel) == 0 {
		t.Error("a pod with the label in an unlabelled namespace did not reach the injector")
	}
}

func TestMetrics(t *testing.T) {
	e := shared.Get(t)
	if err := e.Client.Create(t.Context(), pod(namespace(t, enabled), nil, nil)); err != nil {
		t.Fatal(err)
	}
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range families {
		switch f.GetName() {
		case "sidecar_injection_total":
			for _, m := range f.GetMetric() {
				var labels []string
				for _, l := range m.GetLabel() {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
				if strings.Join(labels, ",") == "reason=enabled-by-namespace-label,result=injected" && m.GetCounter().GetValue() >= 1 {
					found[f.GetName()] = true
				}
			}
		case "controller_runtime_webhook_latency_seconds":
			found[f.GetName()] = true
		}
	}
	if !found["sidecar_injection_total"] || !found["controller_runtime_webhook_latency_seconds"] {
		t.Errorf("metrics found: %v", found)
	}
}

package charts_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/golden"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/readme"
)

var update = flag.Bool("update", false, "rewrite the golden renders in testdata/golden")

// generated matches the certificate material the chart makes anew at each render.
var generated = regexp.MustCompile(`(?m)^(\s+(?:ca\.crt|tls\.crt|tls\.key|caBundle)): LS0t\S{200,}$`)

// TestRenderGolden pins each installation's render, so that a change of the chart shows up as a
// diff in review; the injector must accept the settings each one gives it.
func TestRenderGolden(t *testing.T) {
	for _, c := range chartcases.Cases {
		t.Run(c.Name, func(t *testing.T) {
			values, err := c.Values()
			if err != nil {
				t.Fatal(err)
			}
			manifest, objs := chartcases.Render(t, "meshinit", "kuma-system", values)
			warnings, err := charts.CheckSettings(objs)
			if err != nil || len(warnings) > 0 {
				t.Errorf("the injector's settings: %v %v", err, warnings)
			}
			got := generated.ReplaceAllString(manifest, "$1: <generated>")
			golden.Check(t, filepath.Join("testdata", "golden", c.Name+".yaml"), []byte(got), *update)
		})
	}
}

func kinds(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, obj := range objs {
		out = append(out, obj.GetKind()+"/"+obj.GetName())
	}
	slices.Sort(out)
	return out
}

// TestGeneratedCertificate: the injector's certificate is valid for the name the API server
// calls it by, and signed by the CA both webhooks trust.
func TestGeneratedCertificate(t *testing.T) {
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", nil)
	secret := chartcases.Find[corev1.Secret](t, objs, "Secret", "meshinit-injector-tls")
	mwc := chartcases.Find[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", "")
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(secret.Data["ca.crt"]) {
		t.Fatal("ca.crt holds no certificate")
	}
	block, _ := pem.Decode(secret.Data["tls.crt"])
	if block == nil {
		t.Fatal("tls.crt holds no certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "meshinit-injector.kuma-system.svc", Roots: pool}); err != nil {
		t.Errorf("the certificate does not serve the Service: %v", err)
	}
	for _, w := range mwc.Webhooks {
		if string(w.ClientConfig.CABundle) != string(secret.Data["ca.crt"]) {
			t.Errorf("webhook %s trusts another CA than the one that signed the certificate", w.Name)
		}
	}
	deploy := chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "meshinit-injector")
	if got := deploy.Spec.Template.Spec.Volumes[0].Secret.SecretName; got != secret.Name {
		t.Errorf("the injector mounts Secret %s, want %s", got, secret.Name)
	}
}

// TestTLSModes: which objects each way of getting the certificate renders.
func TestTLSModes(t *testing.T) {
	caseNamed := func(name string) map[string]any {
		for _, c := range chartcases.Cases {
			if c.Name == name {
				v, err := c.Values()
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		t.Fatalf("no case %s", name)
		return nil
	}
	t.Run("existing secret", func(t *testing.T) {
		_, objs := chartcases.Render(t, "meshinit", "kuma-system", caseNamed("tls-existing-secret"))
		if slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Secret" }) {
			t.Error("the chart made a Secret although one was given")
		}
		deploy := chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "meshinit-injector")
		if got := deploy.Spec.Template.Spec.Volumes[0].Secret.SecretName; got != "injector-tls" {
			t.Errorf("the injector mounts %s, want the given injector-tls", got)
		}
	})
	t.Run("cert-manager with its own CA", func(t *testing.T) {
		_, objs := chartcases.Render(t, "meshinit", "kuma-system", caseNamed("tls-cert-manager-own-ca"))
		for _, want := range []string{"Certificate/meshinit-injector", "Certificate/meshinit-injector-ca",
			"Issuer/meshinit-injector-ca", "Issuer/meshinit-injector-selfsigned"} {
			if !slices.Contains(kinds(objs), want) {
				t.Errorf("no %s in %v", want, kinds(objs))
			}
		}
		mwc := chartcases.Find[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", "")
		if got := mwc.Annotations["cert-manager.io/inject-ca-from"]; got != "kuma-system/meshinit-injector" {
			t.Errorf("inject-ca-from = %q", got)
		}
	})
	t.Run("cert-manager with a cluster issuer", func(t *testing.T) {
		_, objs := chartcases.Render(t, "meshinit", "kuma-system", caseNamed("tls-cert-manager-cluster-issuer"))
		if slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Issuer" }) {
			t.Error("the chart made an Issuer although one was given")
		}
		cert := chartcases.Find[unstructured.Unstructured](t, objs, "Certificate", "meshinit-injector")
		ref, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "issuerRef")
		if ref["name"] != "company-ca" || ref["kind"] != "ClusterIssuer" {
			t.Errorf("issuerRef = %v", ref)
		}
	})
	t.Run("injector outside the cluster", func(t *testing.T) {
		_, objs := chartcases.Render(t, "meshinit", "kuma-system", caseNamed("injector-outside-cluster"))
		// The admission policy keeps injected pods as admitted wherever the injector runs.
		if got := kinds(objs); !slices.Equal(got, []string{"MutatingWebhookConfiguration/meshinit-injector",
			"ValidatingAdmissionPolicy/meshinit-injected-pods", "ValidatingAdmissionPolicyBinding/meshinit-injected-pods"}) {
			t.Errorf("rendered %v, want only the webhook configuration and the admission policy", got)
		}
		mwc := chartcases.Find[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration", "")
		if got := *mwc.Webhooks[0].ClientConfig.URL; got != "https://192.0.2.10:5443/inject-sidecar" {
			t.Errorf("url = %s", got)
		}
	})
}

func env(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			out[e.Name] = e.Value
		}
	}
	return out
}

// TestRuntimeEnvironment: each value of dataPlane reaches the injector as its KUMA_RUNTIME_*
// variable, spelled as the injector reads it.
func TestRuntimeEnvironment(t *testing.T) {
	values, err := chartcases.Cases[slices.IndexFunc(chartcases.Cases, func(c chartcases.Case) bool {
		return c.Name == "cluster-wide-defaults"
	})].Values()
	if err != nil {
		t.Fatal(err)
	}
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", values)
	deploy := chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "meshinit-injector")
	got := env(deploy.Spec.Template.Spec.Containers[0])
	const p = "KUMA_RUNTIME_KUBERNETES_"
	want := map[string]string{
		p + "SYSTEM_NAMESPACE":                                   "kuma-system",
		p + "ADMISSION_SERVER_PORT":                              "5443",
		p + "ADMISSION_SERVER_CERT_DIR":                          "/var/run/secrets/kuma.io/tls-cert",
		p + "CONTROL_PLANE_URL":                                  "https://kuma-control-plane.mesh:5678",
		p + "INJECTOR_CNI_ENABLED":                               "false",
		p + "INJECTOR_SIDECAR_CONTAINER_IMAGE":                   "registry.example.com/kuma-dp:2.9.3",
		p + "INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION":         "2.9.3",
		p + "INJECTOR_SIDECAR_CONTAINER_UID":                     "1000000",
		p + "INJECTOR_SIDECAR_CONTAINER_GID":                     "1000000",
		p + "INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND":   "16006",
		p + "INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_OUTBOUND":  "16001",
		p + "INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE":          "ipv4",
		p + "INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME":              "45s",
		p + "INJECTOR_SIDECAR_CONTAINER_ENV_VARS":                "KUMA_DATAPLANE_RUNTIME_METRICS=on;KUMA_LOG=debug",
		p + "INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU":  "100m",
		p + "INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY": "1Gi",
		p + "INJECTOR_INIT_CONTAINER_IMAGE":                      "ghcr.io/meshinit/kuma-init:0.1.0",
		p + "INJECTOR_INIT_CONTAINER_PRIVILEGED":                 "true",
		p + "INJECTOR_BUILTIN_DNS_ENABLED":                       "false",
		p + "INJECTOR_BUILTIN_DNS_PORT":                          "16053",
		p + "APPLICATION_PROBE_PROXY_PORT":                       "0",
		p + "SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS":              "22,8000-8100",
		p + "SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS":             "9999",
		p + "SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS":               "10.0.0.0/8",
		p + "EXCEPTIONS_LABELS":                                  "",
	}
	for name, value := range want {
		if g, ok := got[name]; !ok || g != value {
			t.Errorf("%s = %q (set: %v), want %q", name, g, ok, value)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected %s=%s", name, got[name])
		}
	}
}

// TestNumbersFromValuesFiles: numbers from YAML files arrive as floats, and must still reach the
// injector as integers.
func TestNumbersFromValuesFiles(t *testing.T) {
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", map[string]any{"dataPlane": map[string]any{"uid": float64(2147483647), "envVars": map[string]any{"N": float64(1e6)}}})
	got := env(chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "meshinit-injector").Spec.Template.Spec.Containers[0])
	if got["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID"] != "2147483647" ||
		got["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS"] != "N=1000000" {
		t.Errorf("got %v", got)
	}
}

// TestCNIProviders: the DaemonSet of each provider mounts and names what Kuma's documentation
// says, and the injector runs in CNI mode with the taint controller watching that DaemonSet.
func TestCNIProviders(t *testing.T) {
	for _, c := range chartcases.Cases {
		if !strings.HasPrefix(c.Name, "cni-") {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			values, err := c.Values()
			if err != nil {
				t.Fatal(err)
			}
			_, objs := chartcases.Render(t, "meshinit", "kuma-system", values)
			set := map[string]string{}
			for _, s := range c.Set {
				k, v, _ := strings.Cut(s, "=")
				set[k] = v
			}
			ds := chartcases.Find[appsv1.DaemonSet](t, objs, "DaemonSet", "meshinit-cni")
			if ds.Namespace != "kube-system" {
				t.Errorf("DaemonSet in %s", ds.Namespace)
			}
			spec := ds.Spec.Template.Spec
			container := spec.Containers[0]
			e := env(container)
			netDir, binDir := "/etc/cni/multus/net.d", "/var/lib/cni/bin"
			if v, ok := set["cni.netDir"]; ok {
				netDir = v
			}
			if v, ok := set["cni.binDir"]; ok {
				binDir = v
			}
			chained := set["cni.chained"] == "true"
			if e["CNI_NET_DIR"] != netDir || e["CNI_BIN_DIR"] != binDir || e["CNI_CONF_NAME"] != set["cni.confName"] ||
				e["CHAINED_CNI_PLUGIN"] != map[bool]string{true: "true", false: "false"}[chained] {
				t.Errorf("install-cni's environment: %v", e)
			}
			if spec.Volumes[0].HostPath.Path != netDir || spec.Volumes[1].HostPath.Path != binDir {
				t.Errorf("host paths %s, %s", spec.Volumes[0].HostPath.Path, spec.Volumes[1].HostPath.Path)
			}
			privileged := set["cni.containerSecurityContext.privileged"] == "true"
			if *container.SecurityContext.Privileged != privileged {
				t.Errorf("privileged = %v", *container.SecurityContext.Privileged)
			}
			if spec.PriorityClassName != "system-node-critical" || !spec.HostNetwork || container.ReadinessProbe == nil {
				t.Errorf("priority %q, host network %v, readiness %v", spec.PriorityClassName, spec.HostNetwork, container.ReadinessProbe)
			}
			if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
				return tol.Operator == corev1.TolerationOpExists && tol.Key == "" && tol.Effect == corev1.TaintEffectNoSchedule
			}) {
				t.Error("the DaemonSet does not tolerate NodeReadiness:NoSchedule")
			}
			injector := env(chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "meshinit-injector").Spec.Template.Spec.Containers[0])
			taint := set["cni.taintController.enabled"] != "false"
			if injector["KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED"] != "true" ||
				injector["KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_ENABLED"] != map[bool]string{true: "true", false: "false"}[taint] ||
				injector["KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_APP"] != ds.Spec.Template.Labels["app"] ||
				injector["KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_NAMESPACE"] != ds.Namespace ||
				injector["KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_NODE_SELECTOR"] != "kubernetes.io/os=linux" {
				t.Errorf("the injector's CNI settings: %v", injector)
			}
			if ip := set["controlPlane.envVars.KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE"]; ip != "" &&
				injector["KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE"] != ip {
				t.Errorf("IP family mode not passed on: %v", injector)
			}
		})
	}
}

// TestBadValues: a mistyped value fails the render with the key, the value and what is accepted,
// whichever check catches it: the schema, the chart's cross-checks, or the injector's own.
func TestBadValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  []string
		want string
	}{
		{"not a boolean", []string{"cni.chained=maybe"}, `cni.chained: "maybe" is a string; accepted: a boolean`},
		{"unknown key", []string{"cni.chaned=true"}, `cni: has no key "chaned"; accepted: the keys binDir, chained, confName, containerSecurityContext, enabled, excludeNamespaces, image, logLevel, metricsPort, namespace, netDir, nodeSelector, podAnnotations, readinessPort, repair, resources, runDir, taintController, tolerations`},
		{"unknown top-level key", []string{"controlplane.replicas=2"}, `values: has no key "controlplane"; accepted: the keys admissionPolicy, cni, controlPlane, dataPlane, global, networkPolicy, tls, webhook`},
		{"not in the enum", []string{"webhook.failurePolicy=Never"}, `webhook.failurePolicy: "Never" is not accepted; accepted: Fail or Ignore`},
		{"root sidecar", []string{"dataPlane.uid=0"}, `dataPlane.uid: "0" is less than 1; accepted: a UID 1-2147483647 (not 0: the sidecar must not run as root), or null for the default`},
		{"relative path", []string{"cni.netDir=etc/cni"}, `cni.netDir: "etc/cni" is not accepted; accepted: an absolute directory path`},
		{"every problem at once", []string{"controlPlane.replicas=-1", "webhook.timeoutSeconds=99"},
			"controlPlane.replicas: \"-1\" is less than 0; accepted: a number of replicas, 0 or more\nwebhook.timeoutSeconds: \"99\" is more than 30; accepted: seconds, 1-30"},
		{"chained without enabled", []string{"cni.chained=true"}, "cni.chained is true but cni.enabled is false: set cni.enabled=true to install kuma-cni"},
		{"conflist in standalone mode", []string{"cni.enabled=true", "cni.confName=10-calico.conflist"},
			`cni.confName "10-calico.conflist" is a conflist, but standalone mode (cni.chained=false) writes kuma-cni's own single-plugin file: give a name ending in .conf or .json, such as kuma-cni.conf, or set cni.chained=true to chain into 10-calico.conflist`},
		{"secret without CA", []string{"tls.mode=secret", "tls.secretName=x"}, "tls.mode is secret but tls.caBundle is empty"},
		{"CA without secret mode", []string{"tls.caBundle=QUJD"}, `tls.secretName and tls.caBundle are only read when tls.mode is secret, and it is "generate"`},
		{"url without a CA", []string{"webhook.url=https://10.0.0.1"}, "webhook.url points the API server at an injector outside the cluster"},
		{"plain http url", []string{"webhook.url=http://10.0.0.1", "tls.mode=secret", "tls.caBundle=QUJD"}, `webhook.url "http://10.0.0.1" is not an https URL`},
		{"CA from two places", []string{"dataPlane.controlPlaneCA.secretName=kuma-tls-cert", "dataPlane.controlPlaneCA.configMapName=kuma-ca"},
			`dataPlane.controlPlaneCA names both the Secret "kuma-tls-cert" and the ConfigMap "kuma-ca": the CA comes from one of them; unset the other`},
		{"two spellings disagree", []string{"dataPlane.ipFamilyMode=ipv4", "controlPlane.envVars.KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE=ipv6"},
			`controlPlane.envVars.KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE is "ipv6", but dataPlane.ipFamilyMode sets it to "ipv4": drop one of the two`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values, err := chartcases.Case{Name: tc.name, Set: tc.set}.Values()
			if err != nil {
				t.Fatal(err)
			}
			_, err = charts.Render(context.Background(), charts.Release{Name: "meshinit", Namespace: "kuma-system", Values: values, KubeVersion: kubeenv.KubeVersion})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// TestControlPlaneCA: the injector reads the control plane's CA from a key of the Secret or the
// ConfigMap dataPlane.controlPlaneCA names, mounted where its variable says.
func TestControlPlaneCA(t *testing.T) {
	for _, tc := range []struct {
		set    string
		source func(corev1.VolumeSource) (name string, items []corev1.KeyToPath)
	}{
		{"secretName=kuma-tls-cert", func(v corev1.VolumeSource) (string, []corev1.KeyToPath) {
			if v.Secret == nil {
				return "", nil
			}
			return v.Secret.SecretName, v.Secret.Items
		}},
		{"configMapName=kuma-tls-cert", func(v corev1.VolumeSource) (string, []corev1.KeyToPath) {
			if v.ConfigMap == nil {
				return "", nil
			}
			return v.ConfigMap.Name, v.ConfigMap.Items
		}},
	} {
		t.Run(tc.set, func(t *testing.T) {
			values, err := chartcases.Case{Set: []string{"dataPlane.controlPlaneCA." + tc.set, "dataPlane.controlPlaneCA.key=ca.pem"}}.Values()
			if err != nil {
				t.Fatal(err)
			}
			_, objs := chartcases.Render(t, "meshinit", "kuma-system", values)
			if _, err := charts.CheckSettings(objs); err != nil {
				t.Fatal(err)
			}
			pod := chartcases.Find[appsv1.Deployment](t, objs, "Deployment", "meshinit-injector").Spec.Template.Spec
			file := env(pod.Containers[0])["KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE"]
			var mounted string
			for _, m := range pod.Containers[0].VolumeMounts {
				for _, v := range pod.Volumes {
					if name, items := tc.source(v.VolumeSource); v.Name == m.Name && name == "kuma-tls-cert" && len(items) == 1 && items[0].Key == "ca.pem" {
						mounted = filepath.Join(m.MountPath, items[0].Path)
					}
				}
			}
			if file == "" || file != mounted {
				t.Errorf("the injector reads the CA from %q, the key ca.pem is mounted at %q", file, mounted)
			}
		})
	}
}

// TestInjectorSettingsChecked: a value only the injector can judge fails CheckSettings, with the
// variable's name, before anything reaches a cluster.
func TestInjectorSettingsChecked(t *testing.T) {
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", map[string]any{"controlPlane": map[string]any{"envVars": map[string]any{
		"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS": "22,70000",
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINR_UID":         "5",
	}}})
	warnings, err := charts.CheckSettings(objs)
	if err == nil || !strings.Contains(err.Error(), `KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS: "70000" in "22,70000"`) {
		t.Errorf("error %v", err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINR_UID") {
		t.Errorf("warnings %v", warnings)
	}
}

// TestLint: `helm lint --strict` finds nothing to say, for the defaults and for every case.
func TestLint(t *testing.T) {
	kv, err := common.ParseKubeVersion(kubeenv.KubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chartcases.Cases {
		values, err := c.Values()
		if err != nil {
			t.Fatal(err)
		}
		lint := action.NewLint()
		lint.Strict, lint.Namespace, lint.KubeVersion = true, "kuma-system", kv
		result := lint.Run([]string{"meshinit"}, values)
		for _, m := range result.Messages {
			if m.Severity > support.InfoSev {
				t.Errorf("%s: %s", c.Name, m.Error())
			}
		}
		for _, err := range result.Errors {
			t.Errorf("%s: %v", c.Name, err)
		}
		if c.Name == "defaults" {
			for _, m := range result.Messages {
				t.Logf("lint: %s", m.Error())
			}
		}
	}
}

// TestREADMEProviders keeps the README's table of CNI providers equal to the tested cases.
func TestREADMEProviders(t *testing.T) {
	var b strings.Builder
	b.WriteString("| cluster | values | also |\n| --- | --- | --- |\n")
	for _, c := range chartcases.Cases {
		if c.Provider == "" {
			continue
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s |\n", c.Provider, readme.Cell(strings.Join(c.Args(), " ")), readme.Cell(c.Note))
	}
	readme.CheckSection(t, "cni-providers", b.String(), *update)
}

// TestSettingsTemplate keeps the chart's _settings.tpl generated from the settings' declarations.
func TestSettingsTemplate(t *testing.T) {
	path := settingsTemplatePath
	want := settingsTemplate()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with api/settings; rerun this test with -update", path)
	}
}

// TestValuesShowDefaults keeps the built-in defaults that values.yaml's comments quote for its
// empty values equal to the settings' declared defaults.
func TestValuesShowDefaults(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("meshinit", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings.All {
		switch s.Default {
		case "", "true", "false":
			continue // booleans are shown as what they turn on, and empty is no comment's business
		}
		if s.Chart != "" && !strings.Contains(string(data), s.Default) {
			t.Errorf("values.yaml does not show %s's default %q, the built-in value of an empty %s", s.Name, s.Default, s.Chart)
		}
	}
}

// TestAdmissionPolicyProtects holds the admission policy's lists to the api's: the annotations
// the injector writes that readers act on, the marks, and the containers it adds. Below
// Kubernetes 1.30, which has no such policy, and with admissionPolicy.enabled=false, none is
// rendered.
func TestAdmissionPolicyProtects(t *testing.T) {
	_, objs := chartcases.Render(t, "meshinit", "kuma-system", nil)
	policy := chartcases.Find[admissionregistrationv1.ValidatingAdmissionPolicy](t, objs, "ValidatingAdmissionPolicy", "meshinit-injected-pods")
	quoted := regexp.MustCompile(`'([^']*)'`)
	listed := func(variable string) []string {
		for _, v := range policy.Spec.Variables {
			if v.Name == variable {
				list, _, _ := strings.Cut(v.Expression, "]")
				var out []string
				for _, m := range quoted.FindAllStringSubmatch(list, -1) {
					out = append(out, m[1])
				}
				return out
			}
		}
		t.Fatalf("the policy has no variable %s", variable)
		return nil
	}
	for _, tc := range []struct {
		variable string
		want     []string
	}{
		{"marks", []string{api.AnnotationSidecarInjected, api.AnnotationTransparentProxyConfig}},
		{"written", api.AnnotationsKumaReads},
		{"ours", []string{api.ContainerInit, api.ContainerValidation, api.ContainerSidecar}},
	} {
		if got := listed(tc.variable); !slices.Equal(got, tc.want) {
			t.Errorf("the policy's %s: %q, want %q", tc.variable, got, tc.want)
		}
	}
	if exempt := policy.Spec.MatchConditions[0].Expression; !strings.Contains(exempt, "'system:serviceaccount:kuma-system:meshinit-injector'") {
		t.Errorf("the policy does not exempt the injector's account: %s", exempt)
	}

	for name, r := range map[string]charts.Release{
		"Kubernetes 1.29": {Name: "meshinit", Namespace: "kuma-system", KubeVersion: "v1.29.4"},
		"admissionPolicy.enabled=false": {Name: "meshinit", Namespace: "kuma-system", KubeVersion: kubeenv.KubeVersion,
			Values: map[string]any{"admissionPolicy": map[string]any{"enabled": false}}},
	} {
		manifest, err := charts.Render(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(manifest, "ValidatingAdmissionPolicy") {
			t.Errorf("%s: the policy is rendered", name)
		}
	}
}

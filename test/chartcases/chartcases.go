// Package chartcases lists the chart installations the tests render, apply and compare (the
// defaults, each way of getting certificates, and each CNI provider of Kuma's documentation,
// spelled as the `--set` flags operators type), and renders the chart for them.
package chartcases

import (
	"context"
	"fmt"
	"testing"

	"helm.sh/helm/v4/pkg/strvals"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/test/kubeenv"
)

// Case is one installation.
type Case struct {
	// Name says what the case pins; goldens and namespaces are named after it.
	Name string
	// Set are --set flags, as `helm install` and `meshinit install control-plane` take them.
	Set []string
	// CRDs the installation's objects need besides Kubernetes' own: "cert-manager".
	CRDs []string
	// Provider and Note, for the CNI providers of Kuma's documentation, make the README's table
	// of them: the cluster, and what else to do there.
	Provider, Note string
}

// caBundle is a stand-in CA for the cases that bring their own certificate.
const caBundle = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJrVENDQVRlZ0F3SUJBZ0lVZm9vCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K"

// chained is the CNI part of every chained provider: conf is the provider's conflist.
func chained(netDir, binDir, conf string) []string {
	return []string{"cni.enabled=true", "cni.chained=true", "cni.netDir=" + netDir, "cni.binDir=" + binDir, "cni.confName=" + conf}
}

// Cases are every installation the tests check.
var Cases = []Case{
	{Name: "defaults"},
	{Name: "tls-existing-secret", Set: []string{"tls.mode=secret", "tls.secretName=injector-tls", "tls.caBundle=" + caBundle}},
	{Name: "tls-cert-manager-own-ca", Set: []string{"tls.mode=certManager"}, CRDs: []string{"cert-manager"}},
	{Name: "tls-cert-manager-cluster-issuer", Set: []string{"tls.mode=certManager",
		"tls.certManager.issuerRef.name=company-ca", "tls.certManager.issuerRef.kind=ClusterIssuer"}, CRDs: []string{"cert-manager"}},
	{Name: "injector-outside-cluster", Set: []string{"webhook.url=https://192.0.2.10:5443", "tls.mode=secret", "tls.caBundle=" + caBundle}},
	{Name: "highly-available", Set: []string{"controlPlane.replicas=3", "controlPlane.priorityClassName=system-cluster-critical", "controlPlane.shutdownDrainSeconds=10",
		"webhook.failurePolicy=Fail", "webhook.timeoutSeconds=5"}},
	{Name: "cluster-wide-defaults", Set: []string{
		"dataPlane.image=registry.example.com/kuma-dp:2.9.3", "dataPlane.kumaDPVersion=2.9.3", "dataPlane.uid=1000000", "dataPlane.gid=1000000",
		"dataPlane.redirectPortInbound=16006", "dataPlane.redirectPortOutbound=16001", "dataPlane.ipFamilyMode=ipv4",
		"dataPlane.drainTime=45s", "dataPlane.envVars.KUMA_DATAPLANE_RUNTIME_METRICS=on", "dataPlane.envVars.KUMA_LOG=debug",
		"dataPlane.resources.requests.cpu=100m", "dataPlane.resources.limits.memory=1Gi",
		"dataPlane.initContainerPrivileged=true", "dataPlane.builtinDNS.enabled=false", "dataPlane.builtinDNS.port=16053",
		"dataPlane.applicationProbeProxyPort=0", "dataPlane.traffic.excludeInboundPorts={22,8000-8100}",
		"dataPlane.traffic.excludeOutboundIPs=10.0.0.0/8", "dataPlane.exceptionsLabels=",
		"dataPlane.controlPlaneURL=https://kuma-control-plane.mesh:5678",
		"controlPlane.envVars.KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS=9999"}},
	// Beside Kuma's control plane: meshinit's webhook called before Kuma's injector, Kuma's
	// ConfigMap and ContainerPatch objects read, sidecars sent to Kuma's control plane.
	{Name: "beside-kuma", Set: []string{"webhook.configurationName=00-meshinit-injector",
		"dataPlane.transparentProxyConfigMap=kuma-transparent-proxy-config", "dataPlane.containerPatches={sidecar-limits,init-verbose}",
		"dataPlane.controlPlaneURL=https://kuma-control-plane.kuma-system:5678"}},
	// Kuma's control plane's CA, from the Secret Kuma keeps it in.
	{Name: "control-plane-ca-from-secret", Set: []string{"dataPlane.controlPlaneCA.secretName=kuma-tls-cert"}},
	// The webhook for the API server alone: its client certificate required, the NetworkPolicy.
	{Name: "webhook-locked-down", Set: []string{"webhook.clientCA.configMapName=apiserver-webhook-client-ca",
		"networkPolicy.enabled=true", "networkPolicy.apiServerCIDRs={10.0.0.0/24,fd00:10::/64}",
		`networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=monitoring`}},
	// The providers of Kuma's CNI documentation, with its values.
	{Name: "cni-cilium", Provider: "Cilium 1.14+", Note: "set Cilium's `cni.exclusive=false`; before 1.14 the file is `05-cilium.conf`", Set: chained("/etc/cni/net.d", "/opt/cni/bin", "05-cilium.conflist")},
	{Name: "cni-calico", Provider: "Calico", Set: chained("/etc/cni/net.d", "/opt/cni/bin", "10-calico.conflist")},
	{Name: "cni-k3s-flannel", Provider: "k3s (Flannel)", Note: "`cni.binDir` is the `bin_dir` of `/var/lib/rancher/k3s/agent/etc/containerd/config.toml`: k3s's static CNI directory (k3s-io/k3s#10868); Kuma's documentation gives `/bin`, older k3s's, a system directory of the host the chart refuses to mount", Set: chained("/var/lib/rancher/k3s/agent/etc/cni/net.d", "/var/lib/rancher/k3s/data/cni", "10-flannel.conflist")},
	{Name: "cni-kind", Provider: "kind", Set: chained("/etc/cni/net.d", "/opt/cni/bin", "10-kindnet.conflist")},
	{Name: "cni-azure", Provider: "Azure CNI", Set: chained("/etc/cni/net.d", "/opt/cni/bin", "10-azure.conflist")},
	{Name: "cni-azure-swift-overlay", Provider: "Azure CNI, swift overlay", Set: chained("/etc/cni/net.d", "/opt/cni/bin", "15-azure-swift-overlay.conflist")},
	{Name: "cni-aws-ipv4-only", Provider: "AWS EKS", Note: "IPv4 only: EKS has no IPv6 by default", Set: append(chained("/etc/cni/net.d", "/opt/cni/bin", "10-aws.conflist"),
		"controlPlane.envVars.KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE=ipv4")},
	{Name: "cni-gke", Provider: "GKE", Note: "enable network policy; `cni.confName` is your CNI's file, such as `05-cilium.conflist` or `10-calico.conflist`", Set: chained("/etc/cni/net.d", "/home/kubernetes/bin", "10-calico.conflist")},
	{Name: "cni-openshift-multus", Provider: "OpenShift (Multus, standalone)", Note: "grant the DaemonSet's account the privileged SCC: `oc adm policy add-scc-to-user privileged -z meshinit-cni -n kube-system`", Set: []string{"cni.enabled=true", "cni.containerSecurityContext.privileged=true"}},
	{Name: "cni-without-taint-controller", Set: append(chained("/etc/cni/net.d", "/opt/cni/bin", "10-calico.conflist"),
		"cni.taintController.enabled=false", "cni.logLevel=debug", "cni.excludeNamespaces={monitoring}")},
}

// Values are the case's values, parsed as Helm parses --set.
func (c Case) Values() (map[string]any, error) {
	values := map[string]any{}
	for _, s := range c.Set {
		if err := strvals.ParseInto(s, values); err != nil {
			return nil, fmt.Errorf("case %s: --set %s: %w", c.Name, s, err)
		}
	}
	return values, nil
}

// Args are the case's flags for `meshinit install control-plane`.
func (c Case) Args() []string {
	var args []string
	for _, s := range c.Set {
		args = append(args, "--set", s)
	}
	return args
}

// Render renders the chart as the release name in namespace, for bin/kube-apiserver's version,
// and returns the manifest and its objects; any error fails t.
func Render(t testing.TB, name, namespace string, values map[string]any) (string, []*unstructured.Unstructured) {
	t.Helper()
	manifest, err := charts.Render(context.Background(), charts.Release{Name: name, Namespace: namespace,
		Values: values, KubeVersion: kubeenv.KubeVersion})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := charts.Objects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return manifest, objs
}

// Find is the rendered object of kind (and name, unless empty), which must be there.
func Find[T any](t testing.TB, objs []*unstructured.Unstructured, kind, name string) *T {
	t.Helper()
	obj, err := charts.Typed[T](objs, kind, name)
	if err != nil || obj == nil {
		t.Fatalf("no %s %s rendered: %v", kind, name, err)
	}
	return obj
}

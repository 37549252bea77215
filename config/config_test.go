package config

import (
	"encoding/pem"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/test/certkit"
)

// configDiff compares configurations by value: quantities by amount, not spelling, and not which
// settings the environment gave.
var configDiff = []cmp.Option{
	cmpopts.IgnoreUnexported(Config{}),
	cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 }),
	cmpopts.EquateComparable(netip.Prefix{}),
	cmp.Comparer(func(a, b labels.Selector) bool { return a.String() == b.String() }),
}

func TestDefault(t *testing.T) {
	want := &Config{
		SystemNamespace: "kuma-system",
		ControlPlaneURL: "https://kuma-control-plane.kuma-system:5678",
		AdmissionServer: AdmissionServer{Port: 5443, CertDir: "/var/run/secrets/kuma.io/tls-cert"},
		Injector: Injector{
			SidecarContainer: SidecarContainer{
				Image: "docker.io/kumahq/kuma-dp:2.14.3", KumaDPVersion: Version{2, 14}, UID: 5678, GID: 5678,
				RedirectPortInbound: 15006, RedirectPortOutbound: 15001,
				IPFamilyMode: api.IPFamilyDualStack, DrainTime: 30 * time.Second, EnvVars: api.EnvVars{},
				Resources: Resources{RequestsCPU: resource.MustParse("50m"), RequestsMemory: resource.MustParse("64Mi"),
					LimitsCPU: resource.MustParse("1"), LimitsMemory: resource.MustParse("512Mi")},
			},
			InitContainer:             InitContainer{Image: "ghcr.io/meshinit/kuma-init:0.1.0"},
			BuiltinDNS:                BuiltinDNS{Enabled: true, Port: 15053},
			ApplicationProbeProxyPort: 9001,
			TransparentProxyConfigMap: "kuma-transparent-proxy-config",
			ContainerPatches:          []string{},
			TransparentProxyBackend:   api.BackendAuto,
		},
		SidecarTraffic: SidecarTraffic{
			ExcludeInboundPorts: api.PortRanges{}, ExcludeOutboundPorts: api.PortRanges{},
			ExcludeInboundIPs: api.CIDRs{}, ExcludeOutboundIPs: api.CIDRs{},
		},
		Exceptions: Exceptions{Labels: map[string]string{
			"openshift.io/build.name": "*", "openshift.io/deployer-pod-for.name": "*"}},
		NodeTaintController: NodeTaintController{CNIApp: "kuma-cni", CNINamespace: "kube-system", Nodes: labels.Everything(), TaintKey: "NodeReadiness"},
	}
	if diff := cmp.Diff(want, defaults(t), configDiff...); diff != "" {
		t.Errorf("defaults(t) (-want +got):\n%s", diff)
	}
	// The contract's defaults in api are the same numbers.
	d := defaults(t)
	if d.Injector.SidecarContainer.UID != api.DefaultSidecarUID || d.Injector.SidecarContainer.RedirectPortInbound != api.DefaultRedirectPortInbound ||
		d.Injector.SidecarContainer.RedirectPortOutbound != api.DefaultRedirectPortOutbound || d.Injector.BuiltinDNS.Port != api.DefaultBuiltinDNSPort ||
		d.Injector.ApplicationProbeProxyPort != api.DefaultApplicationProbeProxyPort || d.Injector.SidecarContainer.DrainTime != api.DefaultDrainTime {
		t.Error("config defaults disagree with the api package's defaults")
	}
}

func TestLoadValues(t *testing.T) {
	for _, tc := range []struct {
		env  string
		want func(*Config)
	}{
		{"KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT=8443", func(c *Config) { c.AdmissionServer.Port = 8443 }},
		{"KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR=/certs/", func(c *Config) { c.AdmissionServer.CertDir = "/certs" }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED=true", func(c *Config) { c.Injector.CNIEnabled = true }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_TRANSPARENT_PROXY_BACKEND=nftables", func(c *Config) { c.Injector.TransparentProxyBackend = api.BackendNFTables }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=kumahq/kuma-dp:2.9.0", func(c *Config) {
			c.Injector.SidecarContainer.Image, c.Injector.SidecarContainer.KumaDPVersion = "kumahq/kuma-dp:2.9.0", Version{2, 9}
		}},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=registry.local/kuma-dp:v3.0.0-rc1@sha256:" + strings.Repeat("a", 64), func(c *Config) {
			c.Injector.SidecarContainer.Image = "registry.local/kuma-dp:v3.0.0-rc1@sha256:" + strings.Repeat("a", 64)
			c.Injector.SidecarContainer.KumaDPVersion = Version{3, 0}
		}},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION=2.14.3", func(c *Config) {}},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE=/var/run/ca//ca.crt", func(c *Config) { c.Injector.CACertFile = "/var/run/ca/ca.crt" }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID=1234", func(c *Config) { c.Injector.SidecarContainer.UID = 1234 }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GID=0", func(c *Config) { c.Injector.SidecarContainer.GID = 0 }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GUI=4321", func(c *Config) { c.Injector.SidecarContainer.GID = 4321 }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IP_FAMILY_MODE=ipv4", func(c *Config) { c.Injector.SidecarContainer.IPFamilyMode = api.IPFamilyIPv4 }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME=1m", func(c *Config) { c.Injector.SidecarContainer.DrainTime = time.Minute }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS=A=1;B=x:y", func(c *Config) {
			c.Injector.SidecarContainer.EnvVars = api.EnvVars{{Name: "A", Value: "1"}, {Name: "B", Value: "x:y"}}
		}},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS=A:1,URL:http://cp:5681", func(c *Config) {
			c.Injector.SidecarContainer.EnvVars = api.EnvVars{{Name: "A", Value: "1"}, {Name: "URL", Value: "http://cp:5681"}}
		}},
		{"KUMA_INJECTOR_INIT_CONTAINER_IMAGE=registry.local/kuma-init:1", func(c *Config) { c.Injector.InitContainer.Image = "registry.local/kuma-init:1" }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_ENABLED=false", func(c *Config) { c.Injector.BuiltinDNS.Enabled = false }},
		{"KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT=0", func(c *Config) { c.Injector.ApplicationProbeProxyPort = 0 }},
		{"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS=1234", func(c *Config) { c.SidecarTraffic.ExcludeInboundPorts = api.PortRanges{{First: 1234, Last: 1234}} }},
		{"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS=5678,8900", func(c *Config) {
			c.SidecarTraffic.ExcludeOutboundPorts = api.PortRanges{{First: 5678, Last: 5678}, {First: 8900, Last: 8900}}
		}},
		{"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_IPS=169.254.169.254", func(c *Config) {
			c.SidecarTraffic.ExcludeOutboundIPs = api.CIDRs{netip.MustParsePrefix("169.254.169.254/32")}
		}},
		{"KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS=app:batch,team:*", func(c *Config) { c.Exceptions.Labels = map[string]string{"app": "batch", "team": "*"} }},
		{"KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS=", func(c *Config) { c.Exceptions.Labels = map[string]string{} }},
		{"KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_ENABLED=true", func(c *Config) { c.NodeTaintController.Enabled = true }},
		{"KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_NAMESPACE=kuma-system", func(c *Config) { c.NodeTaintController.CNINamespace = "kuma-system" }},
		{"KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_NODE_SELECTOR=kubernetes.io/os=linux,!example.com/no-cni", func(c *Config) {
			c.NodeTaintController.Nodes = labels.SelectorFromSet(labels.Set{"kubernetes.io/os": "linux"}).Add(
				*must(labels.NewRequirement("example.com/no-cni", selection.DoesNotExist, nil)))
		}},
		{"KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE=mesh-system", func(c *Config) { c.SystemNamespace = "mesh-system" }},
		{"KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL=http://cp.example:5681", func(c *Config) { c.ControlPlaneURL = "http://cp.example:5681" }},
		{"KUMA_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY=1Gi", func(c *Config) { c.Injector.SidecarContainer.Resources.LimitsMemory = resource.MustParse("1Gi") }},
		{"KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_PRIVILEGED=true", func(c *Config) { c.Injector.InitContainer.Privileged = true }},
	} {
		t.Run(tc.env, func(t *testing.T) {
			got, warnings, err := Load([]string{tc.env, "PATH=/usr/bin"})
			if err != nil || len(warnings) > 0 {
				t.Fatalf("Load: %v %q", err, warnings)
			}
			want := defaults(t)
			tc.want(want)
			if diff := cmp.Diff(want, got, configDiff...); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{[]string{"KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT=0"},
			[]string{`KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_PORT: "0" is out of range 1-65535; accepted: a port number 1-65535`}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR=certs"},
			[]string{`KUMA_RUNTIME_KUBERNETES_ADMISSION_SERVER_CERT_DIR: "certs" is not an absolute path; accepted: ` + api.FormDir}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED=yes"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_CNI_ENABLED: "yes" is not a boolean; accepted: true or false`}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=Kuma DP"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE: "Kuma DP" is not an image reference: invalid reference format: repository name (library/Kuma DP) must be lowercase; accepted: ` + api.FormImage}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE="},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE: is not an image reference: invalid reference format; accepted: ` + api.FormImage}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID=0"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID: "0" is not a UID the sidecar can run as; accepted: ` + api.FormSidecarUID}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID=2147483648"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID: "2147483648" is not a UID the sidecar can run as; accepted: ` + api.FormSidecarUID}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GUI=-1"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GUI: "-1" is not a GID; accepted: ` + api.FormGID}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GID=1", "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GUI=2"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GUI: "2" disagrees with KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_GID="1"; accepted: one of the two spellings, or the same value in both`}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS=A=1;A=2"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS: "A" in "A=1;A=2" is given more than once; accepted: ` + api.FormEnvVarsOrKumas}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS=A:1,B"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_ENV_VARS: "B" in "A:1,B" has no '='; accepted: ` + api.FormEnvVarsOrKumas}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS=openshift.io/build.name"},
			[]string{`KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS: "openshift.io/build.name" has no ':'; accepted: ` + api.FormLabels}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS=bad key:x"},
			[]string{`KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS: "bad key" in "bad key:x" is not a label key; accepted: ` + api.FormLabels}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS=app:a:b"},
			[]string{`KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS: "a:b" in "app:a:b" is not a label value or *; accepted: ` + api.FormLabels}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS=app:a,app:b"},
			[]string{`KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS: "app" in "app:a,app:b" is given more than once; accepted: ` + api.FormLabels}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL=kuma-control-plane:5678"},
			[]string{`KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL: "kuma-control-plane:5678" is not an http(s) URL with a host; accepted: ` + api.FormURL}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU=lots"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_REQUESTS_CPU: "lots" is not a non-negative quantity; accepted: ` + api.FormQuantity}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_APP="},
			[]string{`KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_APP: is not a label value; accepted: ` + api.FormLabelValue}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_NAMESPACE=Kube_System"},
			[]string{`KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_CNI_NAMESPACE: "Kube_System" is not a namespace name; accepted: ` + api.FormNamespace}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_NODE_SELECTOR=os in linux"},
			[]string{`KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_NODE_SELECTOR: "os in linux" is not a label selector (unable to parse requirement: found 'linux' expected: '('); accepted: ` + api.FormSelector}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION=latest"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION: "latest" is not a version; accepted: ` + api.FormKumaDPVersion}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION=2.8.2"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION: "2.8.2" is kuma-dp 2.8, which meshinit does not support; accepted: ` + api.FormKumaDPVersion}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=registry.local/kuma-dp:latest"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION: is empty, and the tag of the sidecar image "registry.local/kuma-dp:latest" says no kuma-dp version; accepted: a kuma-dp version 2.9 to 2.14 or 3.x, such as 2.14.3`}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=registry.local/kuma-dp@sha256:" + strings.Repeat("a", 64)},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION: is empty, and the tag of the sidecar image "registry.local/kuma-dp@sha256:` + strings.Repeat("a", 64) + `" says no kuma-dp version; accepted: a kuma-dp version 2.9 to 2.14 or 3.x, such as 2.14.3`}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=kumahq/kuma-dp:2.8.1"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE: "2.8.1" in "kumahq/kuma-dp:2.8.1" is kuma-dp 2.8, which meshinit does not support; accepted: an image of kuma-dp 2.9 to 2.14 or 3.x, or KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION naming the version it holds`}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE=ca.crt"},
			[]string{`KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE: "ca.crt" is not an absolute path; accepted: ` + api.FormCACertFile}},
		// kuma-dp refuses DNS and probe proxy ports above 65353, and before 2.11 its Envoy DNS
		// listens two ports above the DNS port.
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT=65400", "KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT=65354"}, []string{
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT: "65400" is above 65353, which kuma-dp refuses; accepted: a port 1-65353`,
			`KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT: "65354" is above 65353, which kuma-dp refuses; accepted: a port 1-65353`,
		}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION=2.10", "KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT=15004"}, []string{
			`kuma-dp's Envoy DNS port (KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT + 2): "15006" is also KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND; accepted: a port no other sidecar listener uses`,
		}},
		// Every bad value at once, in the table's order.
		{[]string{"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_IPS=10.0.0.0/33", "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME=-1s",
			"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS=22-"}, []string{
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME: "-1s" is negative; accepted: ` + api.FormDuration,
			`KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_OUTBOUND_PORTS: "22-" is not a port or a range; accepted: ` + api.FormPortRanges,
			`KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_IPS: "10.0.0.0/33" is not a CIDR; accepted: ` + api.FormCIDRs,
		}},
		// The sidecar cannot listen twice on one port.
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT=15001", "KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT=15006"}, []string{
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT: "15001" is also KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_OUTBOUND; accepted: a port no other sidecar listener uses`,
			`KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT: "15006" is also KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND; accepted: a port no other sidecar listener uses`,
		}},
		// kuma-dp's readiness port and Envoy's admin are among them.
		{[]string{"KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT=9902"}, []string{
			`KUMA_RUNTIME_KUBERNETES_APPLICATION_PROBE_PROXY_PORT: "9902" is also the sidecar's readiness port; accepted: a port no other sidecar listener uses`,
		}},
		{[]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT=9901"}, []string{
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT: "9901" is also Envoy's admin port; accepted: a port no other sidecar listener uses`,
		}},
	} {
		t.Run(strings.Join(tc.env, " "), func(t *testing.T) {
			c, _, err := Load(tc.env)
			if err == nil {
				t.Fatalf("Load accepted %q: %#v", tc.env, c)
			}
			if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestVersionSettingWins: a version given beside an image tagged with another wins, with a
// warning, since a mirrored or rebuilt image may be tagged anyhow.
func TestVersionSettingWins(t *testing.T) {
	c, warnings, err := Load([]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION=2.10.1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Injector.SidecarContainer.KumaDPVersion != (Version{2, 10}) {
		t.Errorf("version %v, want 2.10", c.Injector.SidecarContainer.KumaDPVersion)
	}
	want := []string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION is 2.10, but the sidecar image docker.io/kumahq/kuma-dp:2.14.3 is tagged 2.14.3: the injector follows 2.10"}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings %q, want %q", warnings, want)
	}
}

func TestVersions(t *testing.T) {
	for text, want := range map[string]Version{"2.9.0": {2, 9}, "v2.14": {2, 14}, "3.0.0-rc1": {3, 0}, "2.11.8+build.1": {2, 11}, "10.20.30": {10, 20}} {
		if got, ok := parseVersion(text); !ok || got != want {
			t.Errorf("parseVersion(%q) = %v, %v; want %v", text, got, ok, want)
		}
	}
	for _, text := range []string{"", "2", "2.x", "latest", "2.14.3.1", "2..3", "2.-1", "2.+1", "v"} {
		if got, ok := parseVersion(text); ok {
			t.Errorf("parseVersion(%q) = %v, want no version", text, got)
		}
	}
	v := Version{2, 11}
	if !v.AtLeast(2, 11) || !v.AtLeast(2, 9) || v.AtLeast(2, 12) || v.AtLeast(3, 0) || !(Version{3, 0}).AtLeast(2, 14) {
		t.Error("AtLeast orders versions wrong")
	}
}

// TestReadCACert reads the control plane's CA as the injector does at start: PEM certificates
// only, each one parsed, or an error naming the variable and the file.
func TestReadCACert(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ca := string(certkit.NewCA(t, "kuma-ca").PEM)
	const accepted = "; accepted: a file holding the PEM of the control plane's CA certificate, such as the ca.crt of Kuma's kuma-tls-cert Secret"
	for _, tc := range []struct {
		path, want string
	}{
		{write("ca.crt", ca), ""},
		{write("two.crt", ca+ca), ""},
		{filepath.Join(dir, "missing.crt"), `KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE: "` + dir + `/missing.crt" cannot be read: open ` + dir + "/missing.crt: no such file or directory" + accepted},
		{write("empty.crt", ""), `KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE: "` + dir + `/empty.crt" does not hold PEM certificates only` + accepted},
		{write("trailing.crt", ca+"junk"), `KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE: "` + dir + `/trailing.crt" does not hold PEM certificates only` + accepted},
		{write("key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}))),
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE: "` + dir + `/key.pem" holds a PEM EC PRIVATE KEY, not a CERTIFICATE` + accepted},
		{write("bad.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}))),
			`KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE: "` + dir + `/bad.crt" holds a certificate that does not parse: x509: malformed certificate` + accepted},
	} {
		c, _, err := Load([]string{"KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE=" + tc.path})
		if err != nil {
			t.Fatal(err)
		}
		err = c.ReadCACert()
		switch {
		case tc.want == "" && (err != nil || c.Injector.CACert == ""):
			t.Errorf("%s: %v, CA %q", tc.path, err, c.Injector.CACert)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%s: error\n%v\nwant\n%s", tc.path, err, tc.want)
		}
	}
	if c := defaults(t); c.ReadCACert() != nil || c.Injector.CACert != "" {
		t.Error("without the setting, a CA was read")
	}
}

func TestLoadAliasAgreeing(t *testing.T) {
	c, _, err := Load([]string{
		"KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_IMAGE=a/b:1", "KUMA_INJECTOR_INIT_CONTAINER_IMAGE=a/b:1"})
	if err != nil || c.Injector.InitContainer.Image != "a/b:1" {
		t.Fatalf("Load = %v, %v", c, err)
	}
}

func TestLoadWarnsAboutUnknownVariables(t *testing.T) {
	_, warnings, err := Load([]string{
		"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFIC_EXCLUDE_INBOUND_PORTS=22", // typo
		"KUMA_GENERAL_TLS_CERT_FILE=/x",                                   // Kuma's, not ours
		"HOME=/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFIC_EXCLUDE_INBOUND_PORTS is not a setting meshinit knows; it is ignored"}
	if !reflect.DeepEqual(warnings, want) {
		t.Errorf("warnings = %q, want %q", warnings, want)
	}
}

// TestEverySettingBound proves that every declared setting with a variable fills a field, once.
func TestEverySettingBound(t *testing.T) {
	bound := map[*settings.Setting]int{}
	for _, b := range bindings {
		bound[b.Setting]++
		if b.Env == "" {
			t.Errorf("%s is bound but has no variable", b.Name)
		}
	}
	for _, s := range settings.All {
		if n := bound[s]; (s.Env != "") != (n == 1) {
			t.Errorf("%s (variable %q) is bound %d times", s.Name, s.Env, n)
		}
	}
}

// FuzzLoad sets one variable to any value: Load must answer, naming that variable on error.
func FuzzLoad(f *testing.F) {
	f.Fuzz(func(t *testing.T, index uint8, value string) {
		s := bindings[int(index)%len(bindings)]
		if strings.ContainsRune(value, 0) {
			return // the environment cannot hold NUL
		}
		_, _, err := Load([]string{s.Env + "=" + value})
		if err != nil && !strings.Contains(err.Error(), "KUMA_") {
			t.Fatalf("%s=%q: error does not name a variable: %v", s.Env, value, err)
		}
	})
}

func TestFromEnvironment(t *testing.T) {
	c, _, err := Load([]string{"KUMA_INJECTOR_INIT_CONTAINER_IMAGE=a/b:1"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.FromEnvironment(settings.InitImage) {
		t.Error("a setting given by its alias is not reported as given")
	}
	if c.FromEnvironment(settings.SidecarImage) {
		t.Error("a default is reported as given")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// defaults is the configuration of an empty environment.
func defaults(t *testing.T) *Config {
	t.Helper()
	c, _, err := Load(nil)
	if err != nil {
		t.Fatalf("the settings' declared defaults are invalid: %v", err)
	}
	return c
}

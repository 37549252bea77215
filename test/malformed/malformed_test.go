// Package malformed holds one table of malformed inputs, one for every place a user's input goes,
// each with the exact message meshinit answers it with; docs/reliability.md publishes the table.
// Updates of an injected pod after admission are answered by the chart's admission policy, run by
// a real API server that the rows share (policy_test.go).
package malformed

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/admitted"
	"github.com/meshinit/meshinit/charts"
	"github.com/meshinit/meshinit/cni"
	"github.com/meshinit/meshinit/cni/conflist"
	"github.com/meshinit/meshinit/cni/install"
	"github.com/meshinit/meshinit/cni/plugin"
	"github.com/meshinit/meshinit/config"
	"github.com/meshinit/meshinit/initcontainer/cli"
	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/chartcases"
	"github.com/meshinit/meshinit/test/kubeenv"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/readme"
	"github.com/meshinit/meshinit/test/testconfig"
	"github.com/meshinit/meshinit/webhook/inject"
)

var update = flag.Bool("update", false, "rewrite the table in docs/reliability.md")

// place is where an input goes, and how meshinit answers there.
type place struct {
	where  string
	answer func(t *testing.T, input string) string
}

// row is one malformed input and the whole message meshinit answers it with.
type row struct {
	place *place
	input string
	want  string
}

var rows = []row{
	// Pods: every annotation and label meshinit reads, and the pod itself.
	{podAnnotations, `traffic.kuma.io/exclude-inbound-ports: "22,x"`, `traffic.kuma.io/exclude-inbound-ports: "x" in "22,x" is not a port number; accepted: comma-separated ports and ranges 1-65535, e.g. 22,8000-8100`},
	{podAnnotations, `traffic.kuma.io/exclude-inbound-ports: "8100-8000"`, `traffic.kuma.io/exclude-inbound-ports: "8100-8000" starts above its end; accepted: comma-separated ports and ranges 1-65535, e.g. 22,8000-8100`},
	{podAnnotations, `traffic.kuma.io/exclude-outbound-ports: "70000"`, `traffic.kuma.io/exclude-outbound-ports: "70000" is out of range 1-65535; accepted: comma-separated ports and ranges 1-65535, e.g. 22,8000-8100`},
	{podAnnotations, `traffic.kuma.io/exclude-outbound-ports: "22,53-"`, `traffic.kuma.io/exclude-outbound-ports: "53-" in "22,53-" is not a port or a range; accepted: comma-separated ports and ranges 1-65535, e.g. 22,8000-8100`},
	{podAnnotations, `traffic.kuma.io/exclude-inbound-ips: "10.0.0.0/33"`, `traffic.kuma.io/exclude-inbound-ips: "10.0.0.0/33" is not a CIDR; accepted: comma-separated IPv4/IPv6 addresses or CIDRs, e.g. 10.0.0.0/8,fd00::1`},
	{podAnnotations, `traffic.kuma.io/exclude-outbound-ips: "300.1.1.1"`, `traffic.kuma.io/exclude-outbound-ips: "300.1.1.1" is not an IP address; accepted: comma-separated IPv4/IPv6 addresses or CIDRs, e.g. 10.0.0.0/8,fd00::1`},
	{podAnnotations, `traffic.kuma.io/exclude-outbound-ips: "fe80::1%eth0"`, `traffic.kuma.io/exclude-outbound-ips: "fe80::1%eth0" has an IPv6 zone, which rules cannot match; accepted: comma-separated IPv4/IPv6 addresses or CIDRs, e.g. 10.0.0.0/8,fd00::1`},
	{podAnnotations, `traffic.kuma.io/exclude-outbound-ports-for-uids: "sctp:22:1000"`, `traffic.kuma.io/exclude-outbound-ports-for-uids: "sctp" in "sctp:22:1000" is not a protocol (tcp, udp or *); accepted: [tcp|udp|*:][ports|*:]uids entries separated by ';', e.g. tcp:22:1000-2000;53:106`},
	{podAnnotations, `traffic.kuma.io/exclude-outbound-ports-for-uids: "tcp:22:x"`, `traffic.kuma.io/exclude-outbound-ports-for-uids: "x" in "tcp:22:x" is not a UID or a UID range; accepted: [tcp|udp|*:][ports|*:]uids entries separated by ';', e.g. tcp:22:1000-2000;53:106`},
	{podAnnotations, `traffic.kuma.io/exclude-outbound-ports-for-uids: "22:1000;tcp:22:1:2"`, `traffic.kuma.io/exclude-outbound-ports-for-uids: "tcp:22:1:2" in "22:1000;tcp:22:1:2" has more than three ':'-separated parts; accepted: [tcp|udp|*:][ports|*:]uids entries separated by ';', e.g. tcp:22:1000-2000;53:106`},
	{podAnnotations, `traffic.kuma.io/drop-invalid-packets: "enabled"`, `traffic.kuma.io/drop-invalid-packets: "enabled" is not a boolean; accepted: true or false`},
	{podAnnotations, `traffic.kuma.io/iptables-logs: "1"`, `traffic.kuma.io/iptables-logs: "1" is not a boolean; accepted: true or false`},
	{podAnnotations, `kuma.io/transparent-proxying-ip-family-mode: "ipv5"`, `kuma.io/transparent-proxying-ip-family-mode: "ipv5" is not an IP family mode; accepted: dualstack, ipv4 or ipv6`},
	{podAnnotations, `kuma.io/transparent-proxying-reachable-services: "redis_kuma-demo_svc_6379,web!"`, `kuma.io/transparent-proxying-reachable-services: "web!" in "redis_kuma-demo_svc_6379,web!" has '!', which a kuma.io/service value cannot hold (letters, digits, '.', '_', '-', ':', '/'); accepted: comma-separated kuma.io/service values, e.g. redis_kuma-demo_svc_6379`},
	{podAnnotations, `kuma.io/builtin-dns: "on"`, `kuma.io/builtin-dns: "on" is not a switch value; accepted: enabled, disabled, true or false`},
	{podAnnotations, `kuma.io/builtin-dns-port: "0"`, `kuma.io/builtin-dns-port: "0" is out of range 1-65535; accepted: a port number 1-65535`},
	{podAnnotations, `kuma.io/builtin-dns-port: "15001"`, `kuma.io/builtin-dns-port (redirect.dns.port): "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`},
	{podAnnotations, `kuma.io/gateway: "on"`, `kuma.io/gateway: "on" is not a gateway switch; accepted: enabled or disabled (true and false are read alike)`},
	{podAnnotations, `kuma.io/sidecar-env-vars: "A=1;B"`, `kuma.io/sidecar-env-vars: "B" in "A=1;B" has no '='; accepted: NAME=value pairs separated by ';', e.g. A=1;B=two`},
	{podAnnotations, `kuma.io/sidecar-env-vars: "1A=x"`, `kuma.io/sidecar-env-vars: "1A" in "1A=x" is not an environment variable name (letters, digits, '_', '-', '.'; not starting with a digit); accepted: NAME=value pairs separated by ';', e.g. A=1;B=two`},
	{podAnnotations, `kuma.io/sidecar-drain-time: "-1s"`, `kuma.io/sidecar-drain-time: "-1s" is negative; accepted: a non-negative duration such as 30s or 1m30s`},
	{podAnnotations, `kuma.io/sidecar-drain-time: "30"`, `kuma.io/sidecar-drain-time: "30" is not a duration; accepted: a non-negative duration such as 30s or 1m30s`},
	{podAnnotations, `kuma.io/init-first: "first"`, `kuma.io/init-first: "first" is not a switch value; accepted: enabled, disabled, true or false`},
	{podAnnotations, `kuma.io/application-probe-proxy-port: "70000"`, `kuma.io/application-probe-proxy-port: "70000" is out of range 0-65535; accepted: a port number 1-65535, or 0 for off`},
	{podAnnotations, `kuma.io/application-probe-proxy-port: "15006"`, `kuma.io/application-probe-proxy-port: "15006" is also the sidecar's inbound redirect port; accepted: a port no other sidecar listener uses, or 0 for off`},
	{podAnnotations, "traffic.kuma.io/exclude-inbound-ports: \"x\"\nkuma.io/builtin-dns: \"Yes\"", "traffic.kuma.io/exclude-inbound-ports: \"x\" is not a port number; accepted: comma-separated ports and ranges 1-65535, e.g. 22,8000-8100\nkuma.io/builtin-dns: \"Yes\" is not a switch value; accepted: enabled, disabled, true or false"},
	{podAnnotations, `traffic.kuma.io/transparent-proxy-configmap-name: "Orders_TP"`, `traffic.kuma.io/transparent-proxy-configmap-name: "Orders_TP" is not an object name; accepted: an object name such as kuma-transparent-proxy-config (lowercase letters, digits, '-' and '.')`},
	{podAnnotations, `kuma.io/container-patches: "sidecar-limits,Init Verbose"`, `kuma.io/container-patches: "Init Verbose" in "sidecar-limits,Init Verbose" is not an object name (lowercase letters, digits, '-' and '.'); accepted: comma-separated ContainerPatch names, e.g. sidecar-limits,init-verbose`},
	{podAnnotations, `kuma.io/sidecar-proxy-concurrency: "-1"`, `kuma.io/sidecar-proxy-concurrency: "-1" is not a whole number 0-4294967295; accepted: a number of Envoy worker threads 0-4294967295, 0 for no --concurrency (Envoy then uses the CPUs it may run on)`},
	{podAnnotations, `kuma.io/envoy-admin-port: "0"`, `kuma.io/envoy-admin-port: "0" is out of range 1-65535; accepted: a port number 1-65535`},
	{podAnnotations, `kuma.io/envoy-admin-port: "15001"`, `kuma.io/envoy-admin-port: "15001" is also the sidecar's outbound redirect port; accepted: a port no other sidecar listener uses`},
	{podAnnotations, `kuma.io/envoy-log-level: "verbose"`, `kuma.io/envoy-log-level: "verbose" is not an Envoy log level; accepted: an Envoy log level: trace, debug, info, warning (or warn), error, critical or off`},
	{podAnnotations, `kuma.io/envoy-component-log-level: "upstream=debug"`, `kuma.io/envoy-component-log-level: "upstream=debug" has no ':'; accepted: component:level pairs separated by ',', e.g. upstream:debug,connection:trace, with Envoy's levels trace, debug, info, warning (or warn), error, critical or off`},
	{podAnnotations, `kuma.io/envoy-component-log-level: "upstream:debug,router:loud"`, `kuma.io/envoy-component-log-level: "loud" in "upstream:debug,router:loud" is not an Envoy log level; accepted: component:level pairs separated by ',', e.g. upstream:debug,connection:trace, with Envoy's levels trace, debug, info, warning (or warn), error, critical or off`},
	{podAnnotations, `kuma.io/service-account-token-volume: "Mesh_Token"`, `kuma.io/service-account-token-volume: "Mesh_Token" is not a volume name (lowercase letters, digits and '-', at most 63); accepted: the name of one of the pod's volumes, such as a projected serviceAccountToken volume`},
	{podAnnotations, `kuma.io/service-account-token-volume: "mesh-token"`, `kuma.io/service-account-token-volume: "mesh-token" names no volume of the pod; accepted: the name of one of the pod's volumes, such as a projected serviceAccountToken volume`},
	{podAnnotations, `kuma.io/mesh: "Orders_Mesh"`, `pod annotation kuma.io/mesh: "Orders_Mesh" is not a mesh name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit); accepted: a DNS-1123 label such as default`},
	{podAnnotations, `kuma.io/sidecar-env-vars: "KUMA_DATAPLANE_MESH=payments"`, `kuma.io/sidecar-env-vars: "KUMA_DATAPLANE_MESH=payments" would put the sidecar in mesh "payments", but the pod is in mesh "default"; accepted: no KUMA_DATAPLANE_MESH: the pod's label kuma.io/mesh says the mesh`},
	{podAnnotations, `kuma.io/sidecar-env-vars: "KUMA_DNS_ENABLED=false"`, `kuma.io/sidecar-env-vars: "KUMA_DNS_ENABLED=false" would turn off the sidecar's DNS server, to which the rules send the pod's DNS; accepted: no KUMA_DNS_ENABLED: kuma.io/builtin-dns says it`},
	{podAnnotations, `kuma.io/builtin-dns-port: "65400"`, `kuma.io/builtin-dns-port: "65400" is above 65353, which kuma-dp refuses; accepted: a port 1-65353`},
	{podAnnotations, "kuma.io/gateway: enabled\nkuma.io/application-probe-proxy-port: \"9001\"", `kuma.io/application-probe-proxy-port: "9001" turns the application probe proxy on for a gateway (kuma.io/gateway), whose probes kubelet reaches directly; accepted: 0, or no annotation, on a gateway`},
	{podLabels, `kuma.io/sidecar-injection: "maybe"`, `pod label kuma.io/sidecar-injection: "maybe" is not a switch value; accepted: enabled, disabled, true or false`},
	{podLabels, `kuma.io/mesh: "Orders_Mesh"`, `pod label kuma.io/mesh: "Orders_Mesh" is not a mesh name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit); accepted: a DNS-1123 label such as default`},
	{namespaceLabels, `kuma.io/sidecar-injection: "on"`, `label kuma.io/sidecar-injection of namespace demo: "on" is not a switch value; accepted: enabled, disabled, true or false`},
	{namespaceLabels, "kuma.io/sidecar-injection: enabled\nkuma.io/mesh: \"-orders\"", `namespace label kuma.io/mesh: "-orders" is not a mesh name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit); accepted: a DNS-1123 label such as default`},
	{pods, "spec:\n  securityContext:\n    runAsUser: 5678\n  containers:\n  - name: app\n    image: nginx", `container "app" runs as UID 5678, the sidecar's, whose traffic is never redirected: it would bypass the proxy; run it as another user`},
	{pods, "spec:\n  initContainers:\n  - name: setup\n    image: busybox\n    securityContext:\n      runAsUser: 5678\n  containers:\n  - name: app\n    image: nginx", `init container "setup" runs as UID 5678, the sidecar's, whose traffic is never redirected, and it runs while the rules are in place: it would bypass the proxy; run it as another user`},
	{pods, "spec:\n  containers:\n  - name: app\n    image: nginx\n    livenessProbe:\n      tcpSocket:\n        port: 9001", `the liveness probe of container "app" is on port 9001, which is the application probe proxy's (kuma.io/application-probe-proxy-port): the proxy cannot probe it; accepted: a probe on another port, or kuma.io/application-probe-proxy-port set to a port no container uses`},
	{pods, "spec:\n  containers:\n  - name: app\n    image: nginx\n  - name: kuma-sidecar\n    image: busybox", `container "kuma-sidecar" has the name of the sidecar the injector adds, but the pod is not injected (no kuma.io/sidecar-injected: "true"): it would be taken for injected and get no transparent-proxy rules; accepted: another name for the container, or the pod label kuma.io/sidecar-injection: disabled to leave the pod out of the mesh`},
	{pods, "spec:\n  containers:\n  - name: app\n    image: app\n    ports:\n    - containerPort: 9001", `spec.containers[0].ports[0].containerPort: "9001" of container "app" is also the application probe proxy's port: the two would listen on one port; accepted: a port the sidecar does not listen on (9001, 9901, 9902, 15001, 15006, 15053 in this pod), or kuma.io/application-probe-proxy-port set to a port the pod does not use, or 0`},
	{pods, "spec:\n  containers:\n  - name: app\n    image: app\n    ports:\n    - containerPort: 15001\n    - containerPort: 15053\n      protocol: UDP", "spec.containers[0].ports[0].containerPort: \"15001\" of container \"app\" is also the sidecar's outbound redirect port: the two would listen on one port; accepted: a port the sidecar does not listen on (9001, 9901, 9902, 15001, 15006, 15053 in this pod)\nspec.containers[0].ports[1].containerPort: \"15053\" of container \"app\" is also the sidecar's DNS port: the two would listen on one port; accepted: a port the sidecar does not listen on (9001, 9901, 9902, 15001, 15006, 15053 in this pod), or kuma.io/builtin-dns-port set to a port the pod does not use"},
	{pods, "spec:\n  initContainers:\n  - name: app\n    image: setup\n  containers:\n  - name: app\n    image: nginx\n  volumes:\n  - name: kuma-init-tmp\n    emptyDir: {}", "spec.containers[0].name: \"app\" is also spec.initContainers[0].name; accepted: a name of its own for each container\nspec.volumes[0].name: \"kuma-init-tmp\" is the name of a volume the injector adds; accepted: another name"},
	{bigAnnotation, "traffic.kuma.io/exclude-outbound-ips: 10.0.0.0,10.0.0.1,… (12000 addresses)", `the pod's annotations would be 297438 bytes once injected, of which traffic.kuma.io/transparent-proxy-config is 160697, over the 262144 the API server takes (keys and values together); accepted: annotations the injected configuration fits beside, such as exclusions written as fewer, wider port ranges and CIDRs`},
	{podAnnotations, `kuma.io/sidecar-env-vars: "KUMA_CONTROL_PLANE_URL=https://cp.example:5678;POD_NAME=payments"`, "kuma.io/sidecar-env-vars: \"KUMA_CONTROL_PLANE_URL=https://cp.example:5678\" in \"KUMA_CONTROL_PLANE_URL=https://cp.example:5678;POD_NAME=payments\" would connect the sidecar to https://cp.example:5678, not to the cluster's control plane at https://kuma-control-plane.kuma-system:5678; accepted: no KUMA_CONTROL_PLANE_URL: the cluster's KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL says it\nkuma.io/sidecar-env-vars: \"POD_NAME=payments\" in \"KUMA_CONTROL_PLANE_URL=https://cp.example:5678;POD_NAME=payments\" would replace the pod's own name, by which kuma-dp names its Dataplane to the control plane; accepted: no POD_NAME: kubelet sets it from the pod"},
	{cniPodAnnotations, `k8s.v1.cni.cncf.io/networks: '[{"name": "macvlan-conf"},'`, `k8s.v1.cni.cncf.io/networks: "[{\"name\": \"macvlan-conf\"}," is not a JSON list of networks: unexpected end of JSON input; accepted: network names separated by ',' (such as macvlan-conf, kuma-cni), or a JSON list of network selection objects (such as [{"name": "macvlan-conf"}])`},

	// Valid but likely wrong, or leaving traffic outside the mesh: admitted, with the warnings
	// kubectl shows.
	{podWarnings, `metadata: {annotations: {traffic.kuma.io/exclude-outbound-ips: "::ffff:10.0.0.1"}}`, "Warning: traffic.kuma.io/exclude-outbound-ips: ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address, whose traffic is IPv4: it is excluded in the IPv4 rules, as 10.0.0.1"},
	{podWarnings, `metadata: {annotations: {kuma.io/sidecar-injected: "false"}}`, `Warning: annotation kuma.io/sidecar-injected: "false" is the injector's to write, not a way to opt out: the pod is injected, as Kuma's injector injects it, with the annotation set to "true"; to leave a pod out of the mesh, label it kuma.io/sidecar-injection: disabled`},
	{podWarnings, "metadata: {labels: {kuma.io/sidecar-injection: disabled}, annotations: {kuma.io/sidecar-injected: \"true\"}}", `Warning: annotation kuma.io/sidecar-injected: "true" tells Kuma's control plane and kuma-cni that the pod has a sidecar, but it is not injected (disabled-by-pod-label): remove the annotation`},
	{podWarnings, "spec:\n  containers:\n  - name: app\n    image: nginx", `Warning: container "app" may switch to UID 5678, the sidecar's, whose traffic is never redirected, and so bypass the proxy: it may run as root (neither it nor its pod sets runAsNonRoot: true or a runAsUser, so its image decides), and root may switch users; admitted, as Kuma admits it; to rule it out, run it as another user (runAsNonRoot: true, or a runAsUser), or drop the SETUID capability (or ALL)`},
	{podWarnings, "spec:\n  containers:\n  - name: app\n    image: nginx\n    securityContext:\n      runAsUser: 1000\n      capabilities:\n        add: [SETUID]", `Warning: container "app" may switch to UID 5678, the sidecar's, whose traffic is never redirected, and so bypass the proxy: it is given the SETUID capability; admitted, as Kuma admits it; to rule it out, do not add SETUID (or ALL) to its capabilities`},
	{podWarnings, `metadata: {annotations: {kuma.io/sidecar-drain-time: 90s}}`, "Warning: the sidecar's drain time, 1m30s (kuma.io/sidecar-drain-time), is longer than the pod's terminationGracePeriodSeconds, 30: kubelet kills the sidecar before it has drained its connections; give the pod a grace period at least as long, or a shorter drain time"},
	{podWarnings, `metadata: {annotations: {kuma.io/builtin-dns-port: "53"}}`, "Warning: kuma.io/builtin-dns-port: 53 is a privileged port (below 1024), on which kuma-dp, running as UID 5678 with no capability, can listen only where the container runtime lets any user (containerd 2.0 and later do by default) or the pod's sysctl net.ipv4.ip_unprivileged_port_start is 53 or lower; elsewhere its DNS server does not start"},

	// After admission: what the injector wrote, and ephemeral containers that could bypass the
	// proxy, refused by the chart's admission policy, which the API server runs.
	{podUpdate, "metadata:\n  annotations:\n    traffic.kuma.io/transparent-proxy-config: '{\"redirect\":{\"inbound\":{\"enabled\":false}}}'", policyRefusal + "annotation traffic.kuma.io/transparent-proxy-config is the injector's, written when the pod was created, and cannot change: kuma-init, the validation container, kuma-cni and Kuma's control plane act on it; accepted: an update that leaves it as it is (recreate the pod to change it)"},
	{podUpdate, "metadata:\n  annotations:\n    kuma.io/sidecar-injected: null", policyRefusal + "annotation kuma.io/sidecar-injected is the injector's, written when the pod was created, and cannot change: kuma-init, the validation container, kuma-cni and Kuma's control plane act on it; accepted: an update that leaves it as it is (recreate the pod to change it)"},
	{podUpdate, "metadata:\n  annotations:\n    kuma.io/transparent-proxying-inbound-port: \"16006\"", policyRefusal + "annotation kuma.io/transparent-proxying-inbound-port of an injected pod is the injector's, written when the pod was created, and cannot change: Kuma's control plane, kuma-cni and Multus act on it; accepted: an update that leaves it as it is (recreate the pod to change it)"},
	{podUpdate, "metadata:\n  labels:\n    kuma.io/mesh: other", policyRefusal + "label kuma.io/mesh of an injected pod is the injector's, written when the pod was created, and cannot change: the sidecar was started in that mesh; accepted: an update that leaves it as it is (recreate the pod to change it)"},
	{podUpdate, "spec:\n  initContainers:\n  - name: kuma-sidecar\n    image: example.com/proxy:1", policyRefusal + "container kuma-sidecar of an injected pod is the injector's, made when the pod was created, and cannot change; accepted: an update that leaves the containers the injector added as they are (recreate the pod to change them)"},
	{debugContainer, "runAsUser: 5678", policyRefusal + "ephemeral container debugger runs as UID 5678, the pod's sidecar's, whose traffic is never redirected: it would bypass the proxy; accepted: an ephemeral container that runs as another user and cannot switch: runAsNonRoot: true or a runAsUser, no SETUID capability added and no privilege, as kubectl debug --profile=restricted makes it"},
	{debugContainer, "runAsUser: 0", policyRefusal + "ephemeral container debugger runs, or may run, as root (runAsUser: 0, or neither it nor its pod sets runAsNonRoot: true or a runAsUser), and root may switch to UID 5678, the pod's sidecar's, whose traffic is never redirected, and bypass the proxy; accepted: an ephemeral container that runs as another user and cannot switch: runAsNonRoot: true or a runAsUser, no SETUID capability added and no privilege, as kubectl debug --profile=restricted makes it"},
	{debugContainer, "runAsUser: 1000\ncapabilities:\n  add: [SETUID]", policyRefusal + "ephemeral container debugger is privileged or given the SETUID capability, and so may switch to UID 5678, the pod's sidecar's, whose traffic is never redirected, and bypass the proxy; accepted: an ephemeral container that runs as another user and cannot switch: runAsNonRoot: true or a runAsUser, no SETUID capability added and no privilege, as kubectl debug --profile=restricted makes it"},

	// kuma-init and meshinit install transparent-proxy: flags and the configuration document.
	{kumaInitFlags, "--redirect-inbound-port 70000", "Error: invalid argument \"70000\" for \"--redirect-inbound-port\" flag: \"70000\" is out of range 1-65535; accepted: a port number 1-65535\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--redirect-outbound-port http", "Error: invalid argument \"http\" for \"--redirect-outbound-port\" flag: \"http\" is not a port number; accepted: a port number 1-65535\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--redirect-dns --redirect-dns-port 15001", `Error: --redirect-dns-port (redirect.dns.port): "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`},
	{kumaInitFlags, "--exclude-inbound-ports 22,x", "Error: invalid argument \"22,x\" for \"--exclude-inbound-ports\" flag: \"x\" in \"22,x\" is not a port number; accepted: comma-separated ports and ranges 1-65535, e.g. 22,8000-8100\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--exclude-outbound-ips 10.0.0.0/33", "Error: invalid argument \"10.0.0.0/33\" for \"--exclude-outbound-ips\" flag: \"10.0.0.0/33\" is not a CIDR; accepted: comma-separated IPv4/IPv6 addresses or CIDRs, e.g. 10.0.0.0/8,fd00::1\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--exclude-outbound-ports-for-uids tcp:22:", "Error: invalid argument \"tcp:22:\" for \"--exclude-outbound-ports-for-uids\" flag: \"tcp:22:\" has no UIDs; accepted: [tcp|udp|*:][ports|*:]uids entries separated by ';', e.g. tcp:22:1000-2000;53:106\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--ip-family-mode ipv5", "Error: invalid argument \"ipv5\" for \"--ip-family-mode\" flag: \"ipv5\" is not an IP family mode; accepted: dualstack, ipv4 or ipv6\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--redirect-inbound=maybe", "Error: invalid argument \"maybe\" for \"--redirect-inbound\" flag: \"maybe\" is not a boolean; accepted: true or false\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--kuma-dp-user no-such-user", `Error: --kuma-dp-user: "no-such-user" is not a user on this host; accepted: an existing user name, such as one made with useradd -u 5678 -U kuma-dp, or a UID`},
	{kumaInitFlags, "--wait -1", "Error: invalid argument \"-1\" for \"--wait\" flag: \"-1\" is not a whole number; accepted: a whole number 0 or more\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--redirect-inbound-ports 15006", "Error: unknown flag: --redirect-inbound-ports\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--redirect-dns true", "Error: unexpected argument \"true\": --redirect-dns takes its value after '=', as --redirect-dns=true\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--vnet docker0", "Error: invalid argument \"docker0\" for \"--vnet\" flag: \"docker0\" is not interface:CIDR; accepted: " + api.FormVNetwork + "\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--vnet docker0:172.17.0.0/33", "Error: invalid argument \"docker0:172.17.0.0/33\" for \"--vnet\" flag: \"172.17.0.0/33\" in \"docker0:172.17.0.0/33\" is not a CIDR; accepted: " + api.FormVNetwork + "\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--iptables-executables iptables:/usr/sbin/iptables-legacy", `Error: --iptables-executables (iptablesExecutables): "iptables:/usr/sbin/iptables-legacy" names some of iptables, iptables-save, iptables-restore but not all; accepted: all three of a family, or none`},
	{kumaInitFlags, "--iptables-executables iptables-nft:/usr/sbin/iptables-nft", "Error: invalid argument \"iptables-nft:/usr/sbin/iptables-nft\" for \"--iptables-executables\" flag: \"iptables-nft\" in \"iptables-nft:/usr/sbin/iptables-nft\" is not an iptables program's role; accepted: " + api.FormExecutables + "\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--wait-interval 1ms", "Error: invalid argument \"1ms\" for \"--wait-interval\" flag: \"1ms\" is not a whole number; accepted: a whole number 0 or more\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--sleep-between-retries 2", "Error: invalid argument \"2\" for \"--sleep-between-retries\" flag: \"2\" is not a non-negative duration; accepted: a duration such as 2s or 500ms\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--redirect-inbound-insert-instead-of-append=first", "Error: invalid argument \"first\" for \"--redirect-inbound-insert-instead-of-append\" flag: \"first\" is not a boolean; accepted: true or false\nRun 'kuma-init --help' for usage."},
	{kumaInitFlags, "--ebpf-enabled", `Error: --ebpf-enabled (ebpf.enabled): "true" asks for Kuma's eBPF mode, which meshinit does not implement; accepted: false: iptables rules`},
	{kumaInitFlags, "--redirect-dns --resolv-conf /dev/null", `Error: --resolv-conf: "/dev/null" cannot be read: /dev/null is not a regular file; accepted: a resolv.conf whose nameservers' DNS is redirected, or redirect.dns.captureAll: true`},
	{kumaInitFlags, "--config /dev/null", "Error: --config: /dev/null is not a regular file"},
	{kumaInitFlags, "--config-file /nonexistent.yaml", "Flag --config-file has been deprecated, use --config, as kumactl 2.11 and later say\nError: --config-file: open /nonexistent.yaml: no such file or directory"},
	{kumaInitConfig, "", "Error: --config config.yaml:\ndocument: is empty; accepted: a transparent-proxy configuration document, such as redirect: {inbound: {excludePorts: [22]}}"},
	{kumaInitConfig, "redirect: [", "Error: --config config.yaml:\ndocument: is not YAML or JSON: yaml: line 1: did not find expected node content; accepted: a transparent-proxy configuration document"},
	{kumaInitConfig, "ipFamilyMode: ipv6", "Error: --config config.yaml:\nipFamilyMode: \"ipv6\" is not an IP family mode Kuma reads; accepted: dualstack or ipv4; ipv6 is meshinit.ipFamilyMode"},
	{kumaInitConfig, "redirect:\n  inbound:\n    port: 70000\n    excludePorts: 22,x,8000-8100", "Error: --config config.yaml:\nredirect.inbound.excludePorts: \"x\" in \"22,x,8000-8100\" is not a port number; accepted: comma-separated ports 1-65535, e.g. 22,8080 (ranges go in meshinit's excludePortRanges)\nredirect.inbound.port: \"70000\" is out of range 1-65535; accepted: a port number 1-65535"},
	{kumaInitConfig, "redirect:\n  dns:\n    enabled: true\n    port: 15006", "Error: --config config.yaml:\nredirect.dns.port: \"15006\" is also redirect.inbound.port; accepted: a port no other redirect uses"},
	{kumaInitConfig, "ebpf:\n  enabled: true", "Error: --config config.yaml:\nebpf.enabled: \"true\" asks for Kuma's eBPF mode, which meshinit does not implement; accepted: false: iptables rules"},
	{kumaInitConfig, "redirect:\n  inbound:\n    includePorts: [8080, 70000]", "Error: --config config.yaml:\nredirect.inbound.includePorts: \"70000\" in \"8080,70000\" is out of range 1-65535; accepted: " + api.FormPorts},
	{kumaInitConfig, "redirect:\n  outbound:\n    includePorts: \"80-90\"", "Error: --config config.yaml:\nredirect.outbound.includePorts: \"80-90\" is a range, which Kuma's single ports cannot hold; accepted: " + api.FormPorts},
	{kumaInitConfig, "redirect:\n  outbound:\n    enabled: off", "Error: --config config.yaml:\nredirect.outbound.enabled: \"off\" is not a boolean; accepted: true or false"},
	{kumaInitConfig, "redirect:\n  inbound:\n    insertRedirectInsteadOfAppend: 2", "Error: --config config.yaml:\nredirect.inbound.insertRedirectInsteadOfAppend: \"2\" is not a boolean; accepted: true or false"},
	{kumaInitConfig, "redirect:\n  vnet:\n    networks: [docker0]", "Error: --config config.yaml:\nredirect.vnet.networks: \"docker0\" is not interface:CIDR; accepted: " + api.FormVNetwork},
	{kumaInitConfig, "redirect:\n  dns:\n    enabled: true\n    resolvConfigPath: /nonexistent", `Error: redirect.dns.resolvConfigPath: "/nonexistent" cannot be read: open /nonexistent: no such file or directory; accepted: a resolv.conf whose nameservers' DNS is redirected, or redirect.dns.captureAll: true`},
	{kumaInitConfig, "log:\n  enabled: true\n  level: 8", "Error: --config config.yaml:\nlog.level: \"8\" is not a kernel log level; accepted: a kernel log level 0-7"},
	{kumaInitConfig, "comments:\n  disabled: maybe", "Error: --config config.yaml:\ncomments.disabled: \"maybe\" is not a boolean; accepted: true or false"},
	{kumaInitConfig, "waitInterval: -1", "Error: --config config.yaml:\nwaitInterval: \"-1\" is not a whole number; accepted: a whole number 0 or more"},
	{kumaInitConfig, "retry:\n  sleepBetweenRetries: 2 seconds", "Error: --config config.yaml:\nretry.sleepBetweenRetries: \"2 seconds\" is not a non-negative duration; accepted: a duration such as 2s or 500ms"},
	{kumaInitConfig, "iptablesExecutables:\n  iptables: iptables-legacy", "Error: --config config.yaml:\niptablesExecutables.iptables: \"iptables-legacy\" is not an absolute path; accepted: the absolute path of the program\niptablesExecutables: \"iptables:iptables-legacy\" names some of iptables, iptables-save, iptables-restore but not all; accepted: all three of a family, or none"},
	{kumaInitConfig, "cniMode: true\nkumaDPUser: kuma-dp", `Error: kumaDPUser: "kuma-dp" is not a UID, and in CNI mode (cniMode) users are not looked up; accepted: a UID, such as 5678`},
	{kumaInitConfig, "dryRun: sometimes", "Error: --config config.yaml:\ndryRun: \"sometimes\" is not a boolean; accepted: true or false"},
	{kumaInitConfig, "redirect:\n  inbound:\n    excludePort: [22]", "Warning: --config config.yaml: redirect.inbound.excludePort is not a field Kuma or meshinit reads; it is ignored"},
	{kumaInitConfig, "redirect:\n  inbound:\n    excludePorts: [22]\n---\nredirect:\n  outbound:\n    excludePorts: [5432]", "Error: --config config.yaml:\ndocument: has a second YAML document, starting at line 4, whose settings would be ignored; accepted: one transparent-proxy configuration document, with no other after ---"},
	{validatorConfig, `{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false}}}`, "Error: --transparent-proxy-config config.yaml: the transparent-proxy configuration is not the one the injector admitted (SHA-256 " + shortDigest(`{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false}}}`) + "…, not " + shortDigest(validConfig) + "… as MESHINIT_ADMITTED_CONFIG_SHA256 says): the pod's annotation traffic.kuma.io/transparent-proxy-config was changed after admission; recreate the pod"},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=http", `Error: KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT (redirect.inbound.port): "http" is not a port number; accepted: a port number 1-65535`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=15001", `Error: KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT (redirect.inbound.port): "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_INCLUDE_PORTS=80,x", `Error: KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_INCLUDE_PORTS (redirect.outbound.includePorts): "x" in "80,x" is not a port number; accepted: ` + api.FormPorts},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_REDIRECT_VNET_NETWORKS=docker0", `Error: KUMA_TRANSPARENT_PROXY_REDIRECT_VNET_NETWORKS (redirect.vnet.networks): "docker0" is not interface:CIDR; accepted: ` + api.FormVNetwork},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_LOG_LEVEL=debug", `Error: KUMA_TRANSPARENT_PROXY_LOG_LEVEL (log.level): "debug" is not a kernel log level; accepted: a kernel log level 0-7`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_COMMENTS_DISABLED=maybe", `Error: KUMA_TRANSPARENT_PROXY_COMMENTS_DISABLED (comments.disabled): "maybe" is not a boolean; accepted: true or false`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_WAIT_INTERVAL=-5", `Error: KUMA_TRANSPARENT_PROXY_WAIT_INTERVAL (waitInterval): "-5" is not a whole number; accepted: a whole number 0 or more`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_RETRY_SLEEP_BETWEEN_RETRIES=2", `Error: KUMA_TRANSPARENT_PROXY_RETRY_SLEEP_BETWEEN_RETRIES (retry.sleepBetweenRetries): "2" is not a non-negative duration; accepted: a duration such as 2s or 500ms`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_IPTABLES_EXECUTABLES=iptables:/usr/sbin/iptables", `Error: KUMA_TRANSPARENT_PROXY_IPTABLES_EXECUTABLES (iptablesExecutables): "iptables:/usr/sbin/iptables" names some of iptables, iptables-save, iptables-restore but not all; accepted: all three of a family, or none`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_CNI_MODE=true\nKUMA_TRANSPARENT_PROXY_KUMA_DP_USER=kuma-dp", `Error: KUMA_TRANSPARENT_PROXY_KUMA_DP_USER: "kuma-dp" is not a UID, and in CNI mode (cniMode) users are not looked up; accepted: a UID, such as 5678`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_ENABLED=true\nKUMA_TRANSPARENT_PROXY_REDIRECT_DNS_RESOLV_CONFIG_PATH=/run/no-resolv.conf", `Error: KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_RESOLV_CONFIG_PATH: "/run/no-resolv.conf" cannot be read: open /run/no-resolv.conf: no such file or directory; accepted: a resolv.conf whose nameservers' DNS is redirected, or redirect.dns.captureAll: true`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_EBPF_ENABLED=true", `Error: KUMA_TRANSPARENT_PROXY_EBPF_ENABLED (ebpf.enabled): "true" asks for Kuma's eBPF mode, which meshinit does not implement; accepted: false: iptables rules`},
	{kumaInitEnv, "KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORT=22", "Warning: KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORT is not a variable Kuma or meshinit reads; it is ignored"},
	{kumactlLines, "uninstall transparent-proxy --ebpf-enabled", `Error: --ebpf-enabled (ebpf.enabled): "true" asks for Kuma's eBPF mode, which meshinit does not implement; accepted: false: iptables rules`},
	{kumactlLines, "uninstall transparent-proxy --exclude-inbound-ports 22", "Error: unknown flag: --exclude-inbound-ports\nRun 'kumactl uninstall transparent-proxy --help' for usage."},
	{kumactlLines, "install transparent-proxy-validator --validation-server-port 0", "Error: invalid argument \"0\" for \"--validation-server-port\" flag: \"0\" is out of range 1-65535; accepted: a port number 1-65535\nRun 'kumactl install transparent-proxy-validator --help' for usage."},
	{kumactlLines, "install transparent-proxy-validator --ip-family-mode ipv5", "Error: invalid argument \"ipv5\" for \"--ip-family-mode\" flag: \"ipv5\" is not an IP family mode; accepted: dualstack, ipv4 or ipv6\nRun 'kumactl install transparent-proxy-validator --help' for usage."},

	// meshinit inject: its flags and the manifests it reads.
	{injectFlags, "-n Bad_NS!", `Error: --namespace: "Bad_NS!" is not a namespace name; accepted: a namespace name such as kube-system`},
	{injectInput, "apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers:\n  - {name: app, image: nginx}\n  - {name: app, image: busybox}\n  volumes:\n  - {name: data, emptyDir: {}}\n  - {name: data, emptyDir: {}}", "Pod default/app: spec.containers[1].name: \"app\" is also spec.containers[0].name; accepted: a name of its own for each container\nspec.volumes[1].name: \"data\" is also spec.volumes[0].name; accepted: a name of its own for each volume"},
	// Files named where a file is read: devices and FIFOs are refused before a byte is read.
	{namedFiles, "kuma-init --dry-run --config /dev/zero", "Error: --config: /dev/zero is not a regular file"},
	{namedFiles, "kuma-init --dry-run --config $FIFO", "Error: --config: $FIFO is not a regular file"},
	{namedFiles, "kuma-init --dry-run --redirect-dns --resolv-conf /dev/zero", `Error: --resolv-conf: "/dev/zero" cannot be read: /dev/zero is not a regular file; accepted: a resolv.conf whose nameservers' DNS is redirected, or redirect.dns.captureAll: true`},
	{namedFiles, "kuma-init --dry-run --redirect-dns --resolv-conf $FIFO", `Error: --resolv-conf: "$FIFO" cannot be read: $FIFO is not a regular file; accepted: a resolv.conf whose nameservers' DNS is redirected, or redirect.dns.captureAll: true`},
	{namedFiles, "meshinit inject -f /dev/zero", "Error: --filename: /dev/zero is not a regular file; accepted: a regular file of YAML or JSON manifests, at most 32 MiB, or - for stdin"},
	{namedFiles, "meshinit inject -f $FIFO", "Error: --filename: $FIFO is not a regular file; accepted: a regular file of YAML or JSON manifests, at most 32 MiB, or - for stdin"},
	{namedFiles, "meshinit install control-plane -f /dev/zero", "Error: /dev/zero is not a regular file; accepted: a regular file of values, at most 8 MiB, or - for stdin"},
	{namedFiles, "meshinit install control-plane --set-file tls.caBundle=$FIFO", "Error: failed parsing --set-file data: $FIFO is not a regular file; accepted: a regular file of values, at most 8 MiB, or - for stdin"},

	// The injector's KUMA_RUNTIME_* settings.
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_TRANSPARENT_PROXY_CONFIGMAP_NAME=TP", `KUMA_RUNTIME_KUBERNETES_INJECTOR_TRANSPARENT_PROXY_CONFIGMAP_NAME: "TP" is not an object name; accepted: an object name such as kuma-transparent-proxy-config (lowercase letters, digits, '-' and '.')`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_CONTAINER_PATCHES=a;b", `KUMA_RUNTIME_KUBERNETES_INJECTOR_CONTAINER_PATCHES: "a;b" is not an object name (lowercase letters, digits, '-' and '.'); accepted: comma-separated ContainerPatch names, e.g. sidecar-limits,init-verbose`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID=0", `KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_UID: "0" is not a UID the sidecar can run as; accepted: a UID 1-2147483647 (not 0: the sidecar must not run as root)`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND=http", `KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND: "http" is not a port number; accepted: a port number 1-65535`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME=30", `KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_DRAIN_TIME: "30" is not a duration; accepted: a non-negative duration such as 30s or 1m30s`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=Kuma DP", `KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE: "Kuma DP" is not an image reference: invalid reference format: repository name (library/Kuma DP) must be lowercase; accepted: a container image reference such as docker.io/kumahq/kuma-dp:2.14.3`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL=kuma-control-plane:5678", `KUMA_RUNTIME_KUBERNETES_CONTROL_PLANE_URL: "kuma-control-plane:5678" is not an http(s) URL with a host; accepted: an http or https URL with a host, such as https://kuma-control-plane.kuma-system:5678`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS=openshift.io/build.name", `KUMA_RUNTIME_KUBERNETES_EXCEPTIONS_LABELS: "openshift.io/build.name" has no ':'; accepted: key:value pairs separated by ',' with * for any value, e.g. openshift.io/build.name:*`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY=512MB", `KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_RESOURCES_LIMITS_MEMORY: "512MB" is not a non-negative quantity; accepted: a Kubernetes quantity such as 50m, 1 or 64Mi`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT=15006", `KUMA_RUNTIME_KUBERNETES_INJECTOR_BUILTIN_DNS_PORT: "15006" is also KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_REDIRECT_PORT_INBOUND; accepted: a port no other sidecar listener uses`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION=2.8", `KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION: "2.8" is kuma-dp 2.8, which meshinit does not support; accepted: a kuma-dp version 2.9 to 2.14 or 3.x, such as 2.14.3, or empty for the sidecar image's tag`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE=registry.local/kuma-dp:latest", `KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION: is empty, and the tag of the sidecar image "registry.local/kuma-dp:latest" says no kuma-dp version; accepted: a kuma-dp version 2.9 to 2.14 or 3.x, such as 2.14.3`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE=ca.crt", `KUMA_RUNTIME_KUBERNETES_INJECTOR_CA_CERT_FILE: "ca.crt" is not an absolute path; accepted: the absolute path of a PEM file, or empty for none`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_TAINT_KEY=Node Readiness", `KUMA_RUNTIME_KUBERNETES_NODE_TAINT_CONTROLLER_TAINT_KEY: "Node Readiness" is not a taint key; accepted: a taint key such as NodeReadiness or example.com/cni-not-ready`},
	{injectorEnv, "KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_IMAGE=a/b:1\nKUMA_INJECTOR_INIT_CONTAINER_IMAGE=c/d:2", `KUMA_INJECTOR_INIT_CONTAINER_IMAGE: "c/d:2" disagrees with KUMA_RUNTIME_KUBERNETES_INJECTOR_INIT_CONTAINER_IMAGE="a/b:1"; accepted: one of the two spellings, or the same value in both`},

	// install-cni's environment.
	{installCNIEnv, "CNI_NET_DIR=etc/cni/net.d", `CNI_NET_DIR: "etc/cni/net.d" is not an absolute path; accepted: an absolute directory path, such as /etc/cni/net.d`},
	{installCNIEnv, "CNI_CONF_NAME=10-calico.yaml", `CNI_CONF_NAME: "10-calico.yaml" is not a network configuration file name; accepted: a file name ending in .conflist, .conf or .json, such as 10-calico.conflist, or empty for the first file by name`},
	{installCNIEnv, "CHAINED_CNI_PLUGIN=false\nCNI_CONF_NAME=10-calico.conflist", `CNI_CONF_NAME: "10-calico.conflist" is a list's name, but standalone mode writes a single plugin's configuration; accepted: with CHAINED_CNI_PLUGIN=false, a file name ending in .conf or .json, or empty for kuma-cni.conf`},
	{installCNIEnv, "CNI_LOG_LEVEL=trace", `CNI_LOG_LEVEL: "trace" is not a log level; accepted: off, debug, info, warn or error`},
	{installCNIEnv, "CNI_EXCLUDE_NAMESPACES=kube-system,Kuma_System", `CNI_EXCLUDE_NAMESPACES: "Kuma_System" in "kube-system,Kuma_System" is not a namespace name; accepted: comma-separated namespace names, such as kube-system,kuma-system`},
	{installCNIEnv, "KUBERNETES_SERVICE_HOST=https://10.96.0.1", `KUBERNETES_SERVICE_HOST: "https://10.96.0.1" is not a host name or IP address; accepted: the API server's host name or IP address (Kubernetes sets it in every pod)`},
	{installCNIEnv, "METRICS_ADDR=9110", `METRICS_ADDR: "9110" is not a listen address; accepted: host:port, such as :9109 or 127.0.0.1:9109 (port 0 picks a free port), or empty for no metrics`},
	{installCNIEnv, "MOUNTED_CNI_RUN_DIR=var/run/kuma-cni", `MOUNTED_CNI_RUN_DIR: "var/run/kuma-cni" is not an absolute path; accepted: an absolute directory path, such as /etc/cni/net.d`},
	{installCNIEnv, "CNI_REPAIR_ENABLED=yes", `CNI_REPAIR_ENABLED: "yes" is not a boolean; accepted: true or false`},
	{installCNIEnv, "NODE_NAME=Node_1", `NODE_NAME: "Node_1" is not an object name; accepted: a node name (lowercase letters, digits, '-' and '.'), or empty`},
	{installCNIEnv, "KUBECFG_FILE_NAME=ZZZ-kuma-cni-kubeconfig.conf", `KUBECFG_FILE_NAME: "ZZZ-kuma-cni-kubeconfig.conf" ends in .conf, and runtimes would load it as a network configuration; accepted: a file name such as ZZZ-kuma-cni-kubeconfig, not ending in .conflist, .conf or .json (runtimes would load it as a network configuration)`},
	{installCNIEnv, "CFGCHECK_INTERVAL=0.5", `CFGCHECK_INTERVAL: "0.5" is not a number of seconds; accepted: a whole number of seconds, 1 or more`},
	{installCNIEnv, "KUBERNETES_SERVICE_PROTOCOL=HTTPS", `KUBERNETES_SERVICE_PROTOCOL: "HTTPS" is not a protocol the API server speaks; accepted: https or http`},
	{installCNIEnv, "KUBE_SERVICE_ACCOUNT_TOKEN_PATH=token", `KUBE_SERVICE_ACCOUNT_TOKEN_PATH: "token" is not an absolute path; accepted: an absolute file path, such as /var/run/secrets/kubernetes.io/serviceaccount/token, or empty`},
	{installCNIEnv, `CNI_NETWORK_CONFIG={"cniVersion":"0.3.1","name":"kuma-cni","type":"kuma-cni","log_level":"trace"}`, `CNI_NETWORK_CONFIG: "{\"cniVersion\":\"0.3.1\",\"name\":\"kuma-cni\",\"type\":\"kuma-cni\",\"log_level\":\"trace\"}" has log_level "trace", which is not one of off, debug, info, warn or error; accepted: kuma-cni's network configuration as JSON, such as Kuma's chart writes: {"cniVersion":"0.3.1","name":"kuma-cni","type":"kuma-cni","log_level":"info","kubernetes":{"exclude_namespaces":["kube-system"]}}`},
	{installCNIEnv, `CNI_NETWORK_CONFIG={"type":"calico"}`, `CNI_NETWORK_CONFIG: "{\"type\":\"calico\"}" configures the plugin "calico", not kuma-cni; accepted: kuma-cni's network configuration as JSON, such as Kuma's chart writes: {"cniVersion":"0.3.1","name":"kuma-cni","type":"kuma-cni","log_level":"info","kubernetes":{"exclude_namespaces":["kube-system"]}}`},

	// kuma-cni: its network configuration, CNI_ARGS, and the pod's configuration.
	{kumaCNIStdin, `{"cniVersion":"1.0.0","name":"k8s","type":"kuma-cni",`, "kuma-cni: the network configuration is not JSON: unexpected end of JSON input"},
	{kumaCNIStdin, `{"cniVersion":"1.0.0","name":"k8s","type":"kuma-cni","log_level":"loud"}`, `kuma-cni: log_level "loud" is not a log level; accepted: off, debug, info, warn or error`},
	{kumaCNIStdin, `{"cniVersion":"1.0.0","name":"k8s","type":"kuma-cni","prevResult":{"ips":"10.0.0.2"}}`, "kuma-cni: the network configuration's prevResult.ips is a JSON string; accepted: an array"},
	{kumaCNIStdin, `{"cniVersion":"1.0.0","name":"k8s","type":"kuma-cni","kubernetes":{"exclude_namespaces":"kube-system"}}`, "kuma-cni: the network configuration's kubernetes.exclude_namespaces is a JSON string; accepted: an array"},
	{kumaCNIArgs, "K8S_POD_NAMESPACE", `kuma-cni: CNI_ARGS "K8S_POD_NAMESPACE": invalid pair "K8S_POD_NAMESPACE"; accepted: KEY=value pairs separated by ';', such as K8S_POD_NAMESPACE=demo;K8S_POD_NAME=app`},
	{kumaCNIArgs, "K8S_POD_NAMESPACE=Bad_NS!;K8S_POD_NAME=../secrets", "kuma-cni: CNI_ARGS \"K8S_POD_NAMESPACE=Bad_NS!;K8S_POD_NAME=../secrets\": K8S_POD_NAMESPACE: \"Bad_NS!\" is not a namespace name; accepted: a namespace name such as kube-system\nK8S_POD_NAME: \"../secrets\" is not a pod name; accepted: a pod name such as app-7d4b9c-x2k8q (lowercase letters, digits, '-' and '.')"},
	{kumaCNIRewritten, `{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false}}}`, "kuma-cni: pod demo/app: the transparent-proxy configuration is not the one the injector admitted (SHA-256 " + shortDigest(`{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false}}}`) + "…, not " + shortDigest(validConfig) + "… as MESHINIT_ADMITTED_CONFIG_SHA256 says): the pod's annotation traffic.kuma.io/transparent-proxy-config was changed after admission; recreate the pod"},
	{kumaCNIPod, `{"kumaDPUser":"kuma-dp"}`, "kuma-cni: pod demo/app: annotation traffic.kuma.io/transparent-proxy-config:\nkumaDPUser: \"kuma-dp\" is not a UID, and kuma-cni runs on the node, which does not know the pod's user names; accepted: a UID, such as 5678"},
	{kumaCNIStdin, `{"cniVersion":"1.0.0","name":"k8s","type":"kuma-cni","kubernetes":{"cni_bin_dir":5}}`, "kuma-cni: the network configuration's kubernetes.cni_bin_dir is a JSON number; accepted: a string"},
	{kumaCNIStdin, `{"cniVersion":"1.0.0","name":"k8s","type":"kuma-cni","log_socket":["/var/run/kuma-cni/kuma-cni.sock"]}`, "kuma-cni: the network configuration's log_socket is a JSON array; accepted: a string"},
	{kumaCNINetNS, "/proc/thread-self/ns/net", `kuma-cni: pod demo/app: CNI_NETNS "/proc/thread-self/ns/net" is kuma-cni's own network namespace (the node's), where rules would redirect the node's own traffic; nothing was installed; accepted: the pod's own network namespace`},
	{kumaCNIPod, `{"redirect":{"inbound":{"port":0}}}`, "kuma-cni: pod demo/app: annotation traffic.kuma.io/transparent-proxy-config:\nredirect.inbound.port: \"0\" is out of range 1-65535; accepted: a port number 1-65535"},

	// The node's network configuration, which install-cni chains kuma-cni into.
	{conflistFile, "", "/host/etc/cni/net.d/10-calico.conflist: is empty; accepted: a network configuration, one JSON object"},
	{conflistFile, `{"name": "k8s-pod-network" "plugins": []}`, `/host/etc/cni/net.d/10-calico.conflist: is not valid JSON: invalid character '"' after object key:value pair (line 1, column 28)`},
	{conflistFile, `[{"type": "calico"}]`, "/host/etc/cni/net.d/10-calico.conflist: is not a JSON object; accepted: a network configuration, one JSON object"},
	{conflistFile, `{"name": "k8s-pod-network", "type": "calico"}`, `/host/etc/cni/net.d/10-calico.conflist: has no "plugins" array; accepted: a conflist with its plugins inline`},
	{conflistFile, `{"name": "k8s-pod-network", "plugins": []}`, "/host/etc/cni/net.d/10-calico.conflist: has no plugins; accepted: a list with the network's own plugin, which kuma-cni chains after"},
	{conflistFile, `{"name": "k8s-pod-network", "plugins": [{"type": "calico"}, {"mtu": 1440}]}`, `/host/etc/cni/net.d/10-calico.conflist: has plugins[1] with no "type"; accepted: plugins that each name their type`},
	{conflistFile, `{"cniVersion": "0.3.1", "name": "k8s-pod-network", "plugins": [{"type": "calico"}, {"type": "portmap", "cniVersion": "1.0.0"}]}`, `/host/etc/cni/net.d/10-calico.conflist: mixes CNI versions: plugins[1] (portmap) declares cniVersion "1.0.0", the list "0.3.1"; accepted: one cniVersion for the whole list`},
	{conflistFile, `{"cniVersion": "2.0.0", "name": "k8s-pod-network", "plugins": [{"type": "calico"}]}`, `/host/etc/cni/net.d/10-calico.conflist: declares cniVersion "2.0.0", which kuma-cni does not speak; accepted: a cniVersion kuma-cni speaks: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0`},
	{conflistFile, `{"cniVersions": ["1.0.0", "1.2.0"], "name": "k8s-pod-network", "plugins": [{"type": "calico"}]}`, `/host/etc/cni/net.d/10-calico.conflist: declares "1.2.0" in cniVersions, of which a runtime may pick the highest it knows, and kuma-cni does not speak it; accepted: a cniVersion kuma-cni speaks: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0`},
	{conflistFile, `{"name": "k8s-pod-network", "plugins": [{"type": "calico"}], "plugins": []}`, `/host/etc/cni/net.d/10-calico.conflist: has the key "plugins" more than once, and runtimes read only the last; accepted: each key once`},

	// The chart's values.
	{chartValues, "cni.chained=maybe", "the chart's values are not valid; nothing was rendered:\ncni.chained: \"maybe\" is a string; accepted: a boolean"},
	{chartValues, "cni.chaned=true", "the chart's values are not valid; nothing was rendered:\ncni: has no key \"chaned\"; accepted: the keys binDir, chained, confName, containerSecurityContext, enabled, excludeNamespaces, image, logLevel, metricsPort, namespace, netDir, nodeSelector, podAnnotations, readinessPort, repair, resources, runDir, taintController, tolerations"},
	{chartValues, "cni.enabled=true\ncni.taintController.taintKey=Node Readiness", "the chart's values are not valid; nothing was rendered:\ncni.taintController.taintKey: \"Node Readiness\" is not accepted; accepted: a taint key such as NodeReadiness or example.com/cni-not-ready"},
	{chartValues, "cni.enabled=true\ncni.repair.enabled=maybe", "the chart's values are not valid; nothing was rendered:\ncni.repair.enabled: \"maybe\" is a string; accepted: a boolean"},
	{chartValues, "cni.enabled=true\ncni.metricsPort=0", "the chart's values are not valid; nothing was rendered:\ncni.metricsPort: \"0\" is less than 1; accepted: a port 1-65535"},
	{chartValues, "webhook.failurePolicy=Never", "the chart's values are not valid; nothing was rendered:\nwebhook.failurePolicy: \"Never\" is not accepted; accepted: Fail or Ignore"},
	{chartValues, "dataPlane.uid=0", "the chart's values are not valid; nothing was rendered:\ndataPlane.uid: \"0\" is less than 1; accepted: a UID 1-2147483647 (not 0: the sidecar must not run as root), or null for the default"},
	{chartValues, "dataPlane.gid=0", "the chart's values are not valid; nothing was rendered:\ndataPlane.gid: \"0\" is less than 1; accepted: a GID 1-2147483647 (not 0: the sidecar must not run in the root group), or null for the default"},
	{chartValues, "cni.enabled=true\ncni.binDir=/", "the chart's values are not valid; nothing was rendered:\ncni.binDir \"/\" is a system directory of the host, which the kuma-cni DaemonSet would mount read-write into a root container; accepted: the node's CNI directory itself, such as /opt/cni/bin"},
	{chartValues, "cni.enabled=true\ncni.netDir=/etc", "the chart's values are not valid; nothing was rendered:\ncni.netDir \"/etc\" is a system directory of the host, which the kuma-cni DaemonSet would mount read-write into a root container; accepted: the node's CNI directory itself, such as /etc/cni/net.d"},
	{chartValues, "cni.enabled=true\ncni.netDir=/etc/cni/../", "the chart's values are not valid; nothing was rendered:\ncni.netDir \"/etc/cni/../\" is a system directory of the host, which the kuma-cni DaemonSet would mount read-write into a root container; accepted: the node's CNI directory itself, such as /etc/cni/net.d"},
	{chartValues, "controlPlane.replicas=-1\nwebhook.timeoutSeconds=99", "the chart's values are not valid; nothing was rendered:\ncontrolPlane.replicas: \"-1\" is less than 0; accepted: a number of replicas, 0 or more\nwebhook.timeoutSeconds: \"99\" is more than 30; accepted: seconds, 1-30"},
	{chartValues, "cni.chained=true", "the chart's values are not valid; nothing was rendered:\ncni.chained is true but cni.enabled is false: set cni.enabled=true to install kuma-cni"},
	{chartValues, "cni.enabled=true\ncni.confName=10-calico.conflist", "the chart's values are not valid; nothing was rendered:\n" + `cni.confName "10-calico.conflist" is a conflist, but standalone mode (cni.chained=false) writes kuma-cni's own single-plugin file: give a name ending in .conf or .json, such as kuma-cni.conf, or set cni.chained=true to chain into 10-calico.conflist`},
	{chartValues, "tls.mode=secret\ntls.secretName=meshinit-tls", "the chart's values are not valid; nothing was rendered:\ntls.mode is secret but tls.caBundle is empty: set it to the base64-encoded PEM of the CA that signed the injector's certificate"},
	{chartValues, "webhook.url=http://10.0.0.1\ntls.mode=secret\ntls.caBundle=QUJD", "the chart's values are not valid; nothing was rendered:\n" + `webhook.url "http://10.0.0.1" is not an https URL: the API server calls webhooks over TLS only; give https://host[:port]`},
	{chartValues, "dataPlane.image=docker.io/kumahq/kuma-dp:2.8.0", "the injector would refuse these settings (from dataPlane, cni or controlPlane.envVars):\nKUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_IMAGE: \"2.8.0\" in \"docker.io/kumahq/kuma-dp:2.8.0\" is kuma-dp 2.8, which meshinit does not support; accepted: an image of kuma-dp 2.9 to 2.14 or 3.x, or KUMA_RUNTIME_KUBERNETES_INJECTOR_SIDECAR_CONTAINER_KUMA_DP_VERSION naming the version it holds"},
	{chartValues, "dataPlane.kumaDPVersion=latest", "the chart's values are not valid; nothing was rendered:\ndataPlane.kumaDPVersion: \"latest\" is not accepted; accepted: a kuma-dp version such as 2.14.3, or empty for the image's tag"},
	{chartValues, "dataPlane.controlPlaneCA.secretName=kuma-tls-cert\ndataPlane.controlPlaneCA.configMapName=kuma-ca", "the chart's values are not valid; nothing was rendered:\ndataPlane.controlPlaneCA names both the Secret \"kuma-tls-cert\" and the ConfigMap \"kuma-ca\": the CA comes from one of them; unset the other"},
	{chartValues, "controlPlane.envVars.KUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS=22\\,70000", "the injector would refuse these settings (from dataPlane, cni or controlPlane.envVars):\nKUMA_RUNTIME_KUBERNETES_SIDECAR_TRAFFIC_EXCLUDE_INBOUND_PORTS: \"70000\" in \"22,70000\" is out of range 1-65535; accepted: comma-separated ports and ranges 1-65535, e.g. 22,8000-8100"},
}

// TestMalformedInputs gives meshinit each malformed input where a user would, and asserts the
// whole message, word for word; the table in docs/reliability.md is made of these rows.
// Regenerate it with: go test ./test/malformed -run TestMalformedInputs -update
func TestMalformedInputs(t *testing.T) {
	if len(rows) < 50 {
		t.Errorf("%d rows; the table has at least 50", len(rows))
	}
	var table strings.Builder
	table.WriteString("| where | input | message |\n| --- | --- | --- |\n")
	for i, r := range rows {
		t.Run(fmt.Sprintf("%02d %s", i, r.place.where), func(t *testing.T) {
			if got := r.place.answer(t, r.input); got != r.want {
				t.Errorf("input\n%s\nanswered\n%s\nwant\n%s\n(as Go: %q)", r.input, got, r.want, got)
			}
		})
		fmt.Fprintf(&table, "| %s | %s | %s |\n", readme.Cell(r.place.where), readme.Code(r.input), readme.Code(r.want))
	}
	table.WriteString("\nEach row is asserted by `TestMalformedInputs` in [`test/malformed`](../test/malformed/malformed_test.go); " +
		"`go test ./test/malformed -run TestMalformedInputs -update` regenerates the table.\n")
	readme.CheckFileSection(t, "docs/reliability.md", "malformed", table.String(), *update)
}

// The webhook's places: a pod, its annotations or labels, or its namespace's labels, given as
// YAML, created in a namespace labelled for injection unless the input labels it otherwise. The
// message is the denial kubectl shows after "admission webhook ... denied the request: ".
var (
	podAnnotations = &place{"pod annotations, at admission", func(t *testing.T, in string) string {
		return injectPod(t, "metadata:\n  annotations:\n"+indent(in, 4), nil)
	}}
	podLabels       = &place{"pod labels, at admission", func(t *testing.T, in string) string { return injectPod(t, "metadata:\n  labels:\n"+indent(in, 4), nil) }}
	namespaceLabels = &place{"namespace labels, at admission", func(t *testing.T, in string) string { return injectPod(t, "", fromYAML[map[string]string](t, in)) }}
	pods            = &place{"pod, at admission", func(t *testing.T, in string) string { return injectPod(t, in, nil) }}
)

// More places at admission: a pod's annotations in CNI mode; an annotation made of many
// addresses, given as "key: first,second,… (N addresses)"; and a pod that is admitted, whose
// warnings are the answer, one a line, as kubectl prints them (the pod runs as no root, which
// could switch to the sidecar's UID, unless the input says otherwise).
var (
	cniPodAnnotations = &place{"pod annotations, at admission in CNI mode", func(t *testing.T, in string) string {
		cfg := testconfig.Default()
		cfg.Injector.CNIEnabled = true
		_, err := admit(cfg, fromYAML[corev1.Pod](t, "metadata:\n  annotations:\n"+indent(in, 4)))
		return message(err)
	}}
	bigAnnotation = &place{"pod annotations, at admission", func(t *testing.T, in string) string {
		m := regexp.MustCompile(`^(\S+): .* \((\d+) addresses\)$`).FindStringSubmatch(in)
		if m == nil {
			t.Fatalf("%q is not key: first,… (N addresses)", in)
		}
		n, _ := strconv.Atoi(m[2])
		addresses := make([]string, n)
		for i := range addresses {
			addresses[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)
		}
		pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{m[1]: strings.Join(addresses, ",")}}}
		_, err := admit(testconfig.Default(), pod)
		return message(err)
	}}
	podWarnings = &place{"pod, at admission: admitted with warnings", func(t *testing.T, in string) string {
		pod := fromYAML[corev1.Pod](t, in)
		if pod.Spec.SecurityContext == nil && len(pod.Spec.Containers) == 0 {
			pod.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
		}
		res, err := admit(testconfig.Default(), pod)
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		var lines []string
		for _, w := range res.Warnings {
			lines = append(lines, "Warning: "+w)
		}
		return strings.Join(lines, "\n")
	}}
)

// admit injects a pod of a namespace labelled for injection, as the webhook would, with an app
// container unless it has one.
func admit(cfg *config.Config, pod corev1.Pod) (*inject.Result, error) {
	if len(pod.Spec.Containers) == 0 {
		pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "nginx"}}
	}
	return (&inject.Injector{Config: cfg, NativeSidecars: true}).Inject(&pod, "demo", map[string]string{api.LabelSidecarInjection: "enabled"})
}

func injectPod(t *testing.T, podYAML string, nsLabels map[string]string) string {
	t.Helper()
	pod := fromYAML[corev1.Pod](t, podYAML)
	if len(pod.Spec.Containers) == 0 {
		pod.Spec.Containers = []corev1.Container{{Name: "app", Image: "nginx"}}
	}
	if nsLabels == nil {
		nsLabels = map[string]string{api.LabelSidecarInjection: "enabled"}
	}
	_, err := (&inject.Injector{Config: testconfig.Default(), NativeSidecars: true}).Inject(&pod, "demo", nsLabels)
	return message(err)
}

// kuma-init's places: its flags, the --config document, its environment and kumactl's command
// lines. --dry-run goes first, so that a row that stopped being malformed would change nothing on
// the machine. The message is what kuma-init prints on stderr.
var (
	kumaInitFlags  = &place{"`kuma-init` flags", func(t *testing.T, in string) string { return kumaInit(t, strings.Fields(in)...) }}
	kumaInitConfig = &place{"`kuma-init --config config.yaml`", func(t *testing.T, in string) string {
		t.Chdir(t.TempDir())
		if err := os.WriteFile("config.yaml", []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		return kumaInit(t, "--config", "config.yaml")
	}}
	// kumaInitEnv are variables, one a line, of kuma-init's environment.
	kumaInitEnv = &place{"`KUMA_TRANSPARENT_PROXY_*` environment of `kuma-init`", func(t *testing.T, in string) string {
		for _, kv := range strings.Split(in, "\n") {
			name, value, _ := strings.Cut(kv, "=")
			t.Setenv(name, value)
		}
		return kumaInit(t)
	}}
	// kumactlLines are kumactl's command lines, which kuma-init takes as /usr/bin/kumactl: rows
	// that are refused before anything is touched.
	kumactlLines = &place{"`kumactl` command lines of `kuma-init`", func(t *testing.T, in string) string {
		return runKumaInit(t, "kumactl", strings.Fields(in))
	}}
)

func kumaInit(t *testing.T, args ...string) string {
	t.Helper()
	return runKumaInit(t, "kuma-init", append([]string{"--dry-run"}, args...))
}

// runKumaInit runs kuma-init, named name, on args, and returns what it printed on stderr, its
// errors and warnings, or "(accepted)" when it succeeded without a word.
func runKumaInit(t *testing.T, name string, args []string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.KumaInit(name, "").Main(context.Background(), args, cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Environ: os.Environ()})
	if code == 0 && stderr.Len() == 0 {
		return "(accepted)"
	}
	return strings.TrimSuffix(stderr.String(), "\n")
}

// namedFiles are command lines of the real binaries, kuma-init or meshinit, whose $FIFO is a FIFO
// no one writes to: a program that opened it to read would wait for ever. The message is what the
// program printed on stderr, the FIFO's path written $FIFO again.
var namedFiles = &place{"files named on a command line: devices and FIFOs", func(t *testing.T, in string) string {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(strings.ReplaceAll(in, "$FIFO", fifo))
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), binaries.Build(t, args[0]), args[1:]...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err == nil {
		return "(accepted)"
	}
	return strings.ReplaceAll(strings.TrimSuffix(stderr.String(), "\n"), fifo, "$FIFO")
}}

// The environments, one variable a line: the injector's, and install-cni's, to which Kubernetes
// adds KUBERNETES_SERVICE_HOST in every pod. The message follows the program's "the settings are
// not valid" line.
var (
	injectorEnv = &place{"injector environment", func(t *testing.T, in string) string {
		_, _, err := config.Load(strings.Split(in, "\n"))
		return message(err)
	}}
	installCNIEnv = &place{"install-cni environment", func(t *testing.T, in string) string {
		_, err := install.LoadConfig(append([]string{"KUBERNETES_SERVICE_HOST=10.96.0.1"}, strings.Split(in, "\n")...))
		return message(err)
	}}
)

// kuma-cni's places: the network configuration on its stdin, CNI_ARGS, and the pod's effective
// configuration, which kuma-cni reads from the pod. The message is the error of the ADD.
var (
	kumaCNIStdin = &place{"kuma-cni network configuration (stdin)", func(t *testing.T, in string) string {
		return kumaCNI(t, in, "K8S_POD_NAMESPACE=demo;K8S_POD_NAME=app", validConfig)
	}}
	kumaCNIArgs = &place{"kuma-cni `CNI_ARGS`", func(t *testing.T, in string) string { return kumaCNI(t, netconf, in, validConfig) }}
	kumaCNIPod  = &place{"`traffic.kuma.io/transparent-proxy-config` of a pod, read by kuma-cni", func(t *testing.T, in string) string {
		return kumaCNI(t, netconf, "K8S_POD_NAMESPACE=demo;K8S_POD_NAME=app", in)
	}}
	// kumaCNINetNS runs the ADD of an injected pod on a thread that entered a test namespace, which
	// stands for the node's: CNI_NETNS names the caller's own namespace, which kuma-cni must refuse,
	// and were it to act, only the test namespace would get rules.
	kumaCNINetNS = &place{"kuma-cni `CNI_NETNS`", func(t *testing.T, in string) string {
		node := netkit.NewBare(t)
		var msg string
		err := node.Do(func() error {
			p := &plugin.Plugin{Pods: podSource{validConfig}, Stderr: io.Discard, OwnNetNS: "/proc/thread-self/ns/net"}
			msg = message(p.Add(&skel.CmdArgs{ContainerID: "c1", Netns: in, IfName: "eth0", Args: "K8S_POD_NAMESPACE=demo;K8S_POD_NAME=app",
				StdinData: []byte(netconf)}))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if rules := node.Run(t, "iptables-save") + node.Run(t, "ip6tables-save"); strings.Contains(rules, "KUMA_MESH") {
			t.Errorf("rules were installed in kuma-cni's own namespace:\n%s", rules)
		}
		return msg
	}}
)

const (
	netconf = `{"cniVersion":"1.0.0","name":"k8s","type":"kuma-cni","kubernetes":{"kubeconfig":"/etc/cni/net.d/kuma-cni-kubeconfig"}}`
	// validConfig is the configuration of an injected pod.
	validConfig = `{"kumaDPUser":"5678"}`
)

// podSource answers every lookup with an injected pod whose configuration is config.
type podSource struct{ config string }

func (p podSource) Pod(context.Context, string, string) (*plugin.Pod, error) {
	pod := &plugin.Pod{}
	pod.Metadata.Annotations = map[string]string{api.AnnotationSidecarInjected: "true", api.AnnotationTransparentProxyConfig: p.config}
	return pod, nil
}

func kumaCNI(t *testing.T, stdin, cniArgs, podConfig string) string {
	t.Helper()
	t.Setenv("CNI_LOG_LEVEL", "")
	logs, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	p := &plugin.Plugin{Pods: podSource{podConfig}, Stderr: logs}
	return message(p.Add(&skel.CmdArgs{ContainerID: "c1", Netns: "/var/run/netns/cni-1", IfName: "eth0", Args: cniArgs, StdinData: []byte(stdin)}))
}

// kumaCNIRewritten is kuma-cni reading an injected pod whose configuration is the input, while its
// sidecar carries the digest of validConfig, the one admitted.
var kumaCNIRewritten = &place{"`traffic.kuma.io/transparent-proxy-config` of a pod, rewritten after admission, read by kuma-cni",
	func(t *testing.T, in string) string {
		t.Setenv("CNI_LOG_LEVEL", "")
		logs, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer logs.Close()
		p := &plugin.Plugin{Pods: sealedPod{in}, Stderr: logs}
		return message(p.Add(&skel.CmdArgs{ContainerID: "c1", Netns: "/var/run/netns/cni-1", IfName: "eth0",
			Args: "K8S_POD_NAMESPACE=demo;K8S_POD_NAME=app", StdinData: []byte(netconf)}))
	}}

// sealedPod answers every lookup with an injected pod whose configuration is config and whose
// sidecar carries the digest of validConfig.
type sealedPod struct{ config string }

func (p sealedPod) Pod(context.Context, string, string) (*plugin.Pod, error) {
	pod := &plugin.Pod{}
	if err := json.Unmarshal([]byte(`{"spec":{"initContainers":[{"name":"kuma-sidecar","env":[{"name":"`+admitted.Env+`","value":"`+
		admitted.Digest([]byte(validConfig))+`"}]}]}}`), pod); err != nil {
		return nil, err
	}
	pod.Metadata.Annotations = map[string]string{api.AnnotationSidecarInjected: "true", api.AnnotationTransparentProxyConfig: p.config}
	return pod, nil
}

// validatorConfig is the validation container's command line on the document the downward API
// projects, the input, while its environment carries the digest of validConfig, the one admitted.
var validatorConfig = &place{"`kumactl install transparent-proxy-validator --transparent-proxy-config config.yaml` of the validation container, the document rewritten after admission",
	func(t *testing.T, in string) string {
		t.Chdir(t.TempDir())
		if err := os.WriteFile("config.yaml", []byte(in), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		cli.KumaInit("kumactl", "").Main(context.Background(), []string{"install", "transparent-proxy-validator", "--config-file=/tmp/.kumactl",
			"--transparent-proxy-config", "config.yaml"}, cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
			Environ: []string{admitted.Env + "=" + admitted.Digest([]byte(validConfig))}})
		return strings.TrimSuffix(stderr.String(), "\n")
	}}

func shortDigest(doc string) string { return admitted.Digest([]byte(doc))[:12] }

// meshinit inject's places: its flags, with a Deployment on stdin, and its input.
var (
	injectFlags = &place{"`meshinit inject -f -` flags", func(t *testing.T, in string) string {
		cmd := exec.Command(binaries.Build(t, "meshinit"), append([]string{"inject", "-f", "-"}, strings.Fields(in)...)...)
		cmd.Stdin = strings.NewReader("apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec: {containers: [{name: app, image: nginx}]}\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err == nil {
			return "(accepted)"
		}
		return strings.TrimSuffix(stderr.String(), "\n")
	}}
	injectInput = &place{"`meshinit inject -f` input", func(t *testing.T, in string) string {
		_, err := inject.InjectManifests(strings.NewReader(in), io.Discard, &inject.Injector{Config: testconfig.Default(), NativeSidecars: true},
			inject.ManifestOptions{Namespace: "default", NamespaceLabels: map[string]string{api.LabelSidecarInjection: "enabled"}})
		return message(err)
	}}
)

// conflistFile is install-cni chaining kuma-cni into the node's network configuration, named as
// the DaemonSet mounts it.
var conflistFile = &place{"network configuration `10-calico.conflist`, chained into by install-cni", func(t *testing.T, in string) string {
	_, _, err := conflist.Insert("/host/etc/cni/net.d/10-calico.conflist", []byte(in), cni.NetConf{Kubernetes: cni.Kubernetes{Kubeconfig: "/etc/cni/net.d/kuma-cni-kubeconfig"}})
	return message(err)
}}

// chartValues are `--set` flags, one a line, of meshinit install control-plane, which checks
// what helm install checks and then the injector's settings, as the injector will at start.
var chartValues = &place{"`meshinit install control-plane --set`", func(t *testing.T, in string) string {
	values, err := chartcases.Case{Name: "malformed", Set: strings.Split(in, "\n")}.Values()
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := charts.Render(context.Background(), charts.Release{Name: "meshinit", Namespace: "kuma-system", Values: values, KubeVersion: kubeenv.KubeVersion})
	if err != nil {
		return err.Error()
	}
	objs, err := charts.Objects(manifest)
	if err != nil {
		t.Fatal(err)
	}
	_, err = charts.CheckSettings(objs)
	return message(err)
}}

func message(err error) string {
	if err == nil {
		return "(accepted)"
	}
	return err.Error()
}

func fromYAML[T any](t *testing.T, text string) T {
	t.Helper()
	var v T
	if err := yaml.UnmarshalStrict([]byte(text), &v); err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	return v
}

func indent(text string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSuffix(text, "\n"), "\n", "\n"+pad) + "\n"
}

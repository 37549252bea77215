package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// start starts the parts: containerd and the control plane at once (neither needs the other), then
// kube-controller-manager, kube-scheduler and the kubelet, and waits for the node to be Ready.
func (n *Node) start(ctx context.Context, pause string) error {
	runtimeDone := make(chan error, 1)
	go func() { runtimeDone <- n.startContainerd(ctx, pause) }()
	planeErr := n.startControlPlane()
	if err := <-runtimeDone; err != nil {
		return err
	}
	if planeErr != nil {
		return planeErr
	}
	users := map[string]envtest.User{
		// Cluster admins all: this node checks pods, not the cluster's authorization.
		"kubelet":                 {Name: "system:node:" + Name, Groups: []string{"system:nodes", "system:masters"}},
		"kube-controller-manager": {Name: "system:kube-controller-manager", Groups: []string{"system:masters"}},
		"kube-scheduler":          {Name: "system:kube-scheduler", Groups: []string{"system:masters"}},
	}
	kubeconfigs := map[string]string{}
	for name, user := range users {
		u, err := n.cp.AddUser(user, nil)
		if err != nil {
			return err
		}
		data, err := u.KubeConfig()
		if err != nil {
			return err
		}
		kubeconfigs[name] = filepath.Join(n.Root, name+".kubeconfig")
		if err := os.WriteFile(kubeconfigs[name], data, 0o600); err != nil {
			return err
		}
	}
	certDir := n.cp.ControlPlane.APIServer.CertDir
	caFile := filepath.Join(n.Root, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, n.cp.ControlPlane.APIServer.SecureServing.CA, 0o644); err != nil {
		return err
	}

	begin := time.Now()
	if _, err := n.run("kube-controller-manager",
		"--kubeconfig="+kubeconfigs["kube-controller-manager"],
		"--leader-elect=false",
		"--secure-port=0",
		// The tokens of service accounts, signed as the API server checks them, and the CA every
		// namespace's kube-root-ca.crt carries to its pods.
		"--service-account-private-key-file="+filepath.Join(certDir, "sa-signer.key"),
		"--root-ca-file="+caFile,
		"--use-service-account-credentials=false",
	); err != nil {
		return err
	}
	if _, err := n.run("kube-scheduler",
		"--kubeconfig="+kubeconfigs["kube-scheduler"],
		"--leader-elect=false",
		"--secure-port=0",
	); err != nil {
		return err
	}
	if err := n.startKubelet(kubeconfigs["kubelet"]); err != nil {
		return err
	}
	if err := n.WaitNodeReady(ctx); err != nil {
		return err
	}
	n.step("kube-controller-manager, kube-scheduler, kubelet: node Ready", begin)
	return nil
}

// startControlPlane starts etcd and kube-apiserver through envtest. kube-apiserver listens on the
// bridge's address, port 443, and its Service range puts the kubernetes Service's ClusterIP on that
// same address: with no kube-proxy, in-cluster clients in pods (KUBERNETES_SERVICE_HOST and _PORT,
// the kube-root-ca.crt the controller manager publishes) reach it as they would in a cluster.
func (n *Node) startControlPlane() error {
	begin := time.Now()
	apiLog, err := os.Create(filepath.Join(n.Root, "logs", "kube-apiserver.log"))
	if err != nil {
		return err
	}
	etcdLog, err := os.Create(filepath.Join(n.Root, "logs", "etcd.log"))
	if err != nil {
		apiLog.Close()
		return err
	}
	n.cpLogs = []*os.File{apiLog, etcdLog}
	for _, dir := range []string{"etcd", "apiserver"} {
		if err := os.MkdirAll(filepath.Join(n.Root, dir), 0o700); err != nil {
			return err
		}
	}
	cp := &envtest.Environment{
		BinaryAssetsDirectory:    n.bin,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  startTimeout,
	}
	cp.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(n.Root, "etcd"), Out: etcdLog, Err: etcdLog}
	api := cp.ControlPlane.GetAPIServer()
	api.CertDir = filepath.Join(n.Root, "apiserver")
	api.SecureServing.Address = BridgeIP.String()
	api.SecureServing.Port = "443"
	api.Out, api.Err = apiLog, apiLog
	api.Configure().
		// envtest turns the ServiceAccount admission off because it runs no controller manager;
		// this node does, and pods get their tokens as in a cluster.
		Disable("disable-admission-plugins").
		// Webhooks and aggregated APIs behind Services are called at their endpoints: the node
		// has no kube-proxy.
		Set("enable-aggregator-routing", "true").
		// The kubelet (logs, exec, port-forward) at the node's address: its name, the first the
		// API server would try, resolves nowhere.
		Set("kubelet-preferred-address-types", "InternalIP").
		Set("service-cluster-ip-range", ServiceRange.String())
	n.cp = cp
	cfg, err := cp.Start()
	if err != nil {
		return fmt.Errorf("starting the control plane: %w\n%s", err, tail(apiLog.Name(), 30))
	}
	n.Config = cfg
	if n.Client, err = client.New(cfg, client.Options{}); err != nil {
		return err
	}
	if n.Clientset, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	u, err := cp.AddUser(envtest.User{Name: "meshinit-node-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	data, err := u.KubeConfig()
	if err != nil {
		return err
	}
	n.Kubeconfig = filepath.Join(n.Root, "admin.kubeconfig")
	if err := os.WriteFile(n.Kubeconfig, data, 0o600); err != nil {
		return err
	}
	n.step("etcd, kube-apiserver", begin)
	return nil
}

// freePort returns a TCP port free on ip.
func freePort(ip net.IP) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// containerdConfig is containerd 2's configuration (version 4: servers are plugins, and a
// top-level [grpc] would be ignored silently). Everything it keeps goes under the node's root.
const containerdConfig = `version = 4
root = '{{root}}/containerd'
state = '{{root}}/run'
temp = '{{root}}/tmp'
# No host configuration, and none of the plugins that write to fixed places (/opt/containerd,
# /var/run/nri) or that the node does not use.
imports = []
disabled_plugins = [
  'io.containerd.internal.v1.opt',
  'io.containerd.nri.v1.nri',
  'io.containerd.image-verifier.v1.bindir',
  'io.containerd.snapshotter.v1.blockfile',
  'io.containerd.snapshotter.v1.erofs',
  'io.containerd.differ.v1.erofs',
  'io.containerd.mount-handler.v1.erofs',
  'io.containerd.tracing.processor.v1.otlp',
  'io.containerd.internal.v1.tracing',
]

[plugins.'io.containerd.server.v1.grpc']
  address = '{{root}}/containerd.sock'
[plugins.'io.containerd.server.v1.ttrpc']
  address = '{{root}}/containerd.sock.ttrpc'
[plugins.'io.containerd.shim.v1.manager']
  # Shim sockets here, not in /run/containerd/s.
  socket_dir = '{{root}}/s'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{{pause}}'

[plugins.'io.containerd.cri.v1.runtime']
  # The VM lacks CAP_SYS_RESOURCE: without this every sandbox fails ("can't get final child's PID
  # from pipe").
  restrict_oom_score_adj = true
  # Pods' network namespaces under the state dir, not /run/netns where ip netns lists them.
  netns_mounts_under_state_dir = true
  cdi_spec_dirs = []
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
    BinaryName = '{{runc}}'
    Root = '{{root}}/runc'
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    # The node's own plugin directory first, for plugins tests install (kuma-cni), then Debian's.
    bin_dirs = ['{{root}}/cni/bin', '/usr/lib/cni']
    conf_dir = '{{root}}/cni/net.d'
    use_internal_loopback = true

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
`

// cniConfig is the pods' network: Debian's bridge plugin on the node's bridge, with no gateway and
// no masquerade, so that it writes no iptables rule; pods reach the node, and each other, on the
// bridge's subnets, above the Service range, and have default routes through the bridge, as pods
// of a cluster do (kuma-init's validation needs them to prove capture).
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "{{name}}",
  "plugins": [{
    "type": "bridge",
    "bridge": "{{name}}",
    "isGateway": false,
    "ipMasq": false,
    "ipam": {
      "type": "host-local",
      "ranges": [
        [{"subnet": "{{subnet}}", "rangeStart": "{{podsFrom}}", "gateway": "{{bridgeIP}}"}],
        [{"subnet": "{{subnet6}}", "gateway": "{{bridgeIP6}}"}]
      ],
      "routes": [{"dst": "0.0.0.0/0", "gw": "{{bridgeIP}}"}, {"dst": "::/0", "gw": "{{bridgeIP6}}"}],
      "dataDir": "{{root}}/cni/ipam"
    }
  }]
}
`

// CNIConfList is the name of the node's conflist in CNIConfDir, the one containerd uses.
const CNIConfList = "10-" + Name + ".conflist"

// CNIConfDir is the directory containerd reads the pods' network configuration from, as a CNI
// DaemonSet's netDir names it.
func (n *Node) CNIConfDir() string { return filepath.Join(n.Root, "cni", "net.d") }

// CNIBinDir is the node's own CNI plugin directory, which containerd searches before Debian's
// /usr/lib/cni: a CNI DaemonSet's binDir, so that what it installs stays under the node's root.
func (n *Node) CNIBinDir() string { return filepath.Join(n.Root, "cni", "bin") }

func (n *Node) expand(s string) string {
	runc, _ := exec.LookPath("runc")
	return strings.NewReplacer("{{root}}", n.Root, "{{name}}", Name, "{{subnet}}", Subnet.String(),
		"{{bridgeIP}}", BridgeIP.String(), "{{subnet6}}", Subnet6.String(), "{{bridgeIP6}}", BridgeIP6.String(), "{{podsFrom}}", podsFrom.String(), "{{pause}}", PauseImage, "{{runc}}", runc).Replace(s)
}

// startContainerd starts containerd, waits for its CRI, and imports the sandbox image.
func (n *Node) startContainerd(ctx context.Context, pause string) error {
	begin := time.Now()
	if len(filepath.Join(n.Root, "s")) > 38 {
		return fmt.Errorf("the node's root %s is too long for containerd's shim socket directory (at most 38 characters with /s)", n.Root)
	}
	for _, dir := range []string{n.CNIConfDir(), n.CNIBinDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(n.CNIConfDir(), CNIConfList), []byte(n.expand(cniConfig)), 0o644); err != nil {
		return err
	}
	config := filepath.Join(n.Root, "containerd.toml")
	if err := os.WriteFile(config, []byte(n.expand(containerdConfig)), 0o644); err != nil {
		return err
	}
	if _, err := n.run("containerd", "--config", config); err != nil {
		return err
	}
	if err := n.waitRuntimeReady(ctx); err != nil {
		return err
	}
	n.step("containerd", begin)
	begin = time.Now()
	if err := n.ImportImage(ctx, pause, PauseImage); err != nil {
		return fmt.Errorf("importing the sandbox image %s: %w", pause, err)
	}
	n.step("sandbox image import", begin)
	return nil
}

// kubeletConfig is the kubelet's configuration for this machine.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {{bridgeIP}}
port: {{port}}
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://{{root}}/containerd.sock
# The machine's cgroups are v1 (hybrid) and no systemd runs: the kubelet refuses v1 unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: {{cgroupRoot}}
# No rule in the host's iptables.
makeIPTablesUtilChains: false
podLogsDir: {{root}}/pod-logs
volumePluginDir: {{root}}/volume-plugins
failSwapOn: false
clusterDomain: cluster.local
serializeImagePulls: false
# Images are imported, never pulled: nothing may collect them, and nothing evicts the tests' pods
# for a disk that others fill.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
`

func (n *Node) startKubelet(kubeconfig string) error {
	port, err := freePort(BridgeIP)
	if err != nil {
		return err
	}
	config := filepath.Join(n.Root, "kubelet.yaml")
	data := strings.NewReplacer("{{port}}", strconv.Itoa(port), "{{cgroupRoot}}", cgroupRoot).Replace(n.expand(kubeletConfig))
	if err := os.WriteFile(config, []byte(data), 0o644); err != nil {
		return err
	}
	_, err = n.run("kubelet",
		"--config="+config,
		"--kubeconfig="+kubeconfig,
		"--root-dir="+filepath.Join(n.Root, "kubelet"),
		// Its default is /var/lib/kubelet/pki whatever the root dir.
		"--cert-dir="+filepath.Join(n.Root, "kubelet", "pki"),
		"--hostname-override="+Name,
		"--node-ip="+BridgeIP.String(),
	)
	return err
}

// RestartContainerd stops containerd (SIGTERM, as a service manager does) with the pods running,
// starts it again, and waits until its CRI is ready; the pods' containers keep running under their
// shims meanwhile.
func (n *Node) RestartContainerd(ctx context.Context) error {
	d := n.daemon("containerd")
	if d == nil {
		return fmt.Errorf("containerd is not running")
	}
	d.stop(10 * time.Second)
	if _, err := n.run("containerd", d.cmd.Args[1:]...); err != nil {
		return err
	}
	return n.waitRuntimeReady(ctx)
}

// RestartKubelet stops the kubelet with the pods running and starts it again; it returns once the
// kubelet has reported the node Ready again after its restart.
func (n *Node) RestartKubelet(ctx context.Context) error {
	d := n.daemon("kubelet")
	if d == nil {
		return fmt.Errorf("the kubelet is not running")
	}
	d.stop(10 * time.Second)
	restarted := time.Now()
	if _, err := n.run("kubelet", d.cmd.Args[1:]...); err != nil {
		return err
	}
	return n.waitNode(ctx, func(node *corev1.Node) bool {
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(restarted.Truncate(time.Second))
			}
		}
		return false
	})
}

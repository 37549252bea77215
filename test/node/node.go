// Package node runs a one-node Kubernetes cluster on this machine for tests: etcd and
// kube-apiserver (through envtest, as test/kubeenv), kube-controller-manager, kube-scheduler, a
// kubelet and containerd with Debian's runc and CNI plugins, all from bin/ (hack/provision.sh).
// Pods really run: images are imported into containerd, pods get an address on a bridge of the
// kit's own, and their network namespaces can be entered.
//
// # What it does to the host, and how it is undone
//
// One node per machine at a time: Start takes an exclusive flock on /run/meshinit-node/lock (a
// second kit, in another test process or another work tree, waits for it and says whose it is).
// Before it changes anything it writes what it is about to change to /run/meshinit-node/state.json;
// Stop undoes it all, and the next Start (or Recover) undoes what a crashed run left, from that file:
//
//   - Processes: etcd and kube-apiserver (as envtest starts them), kube-controller-manager,
//     kube-scheduler, the kubelet and containerd (each in a process group of its own), containerd's
//     shims, the pods' processes. Undone: on a clean stop the parts get SIGTERM, but the pods'
//     processes and their shims, which are killed before the control plane stops; then, and after
//     a crash, every process whose command line names a file under the node's root, and every
//     process in its cgroups, is killed with SIGKILL.
//   - Files: everything lives under one root, /dev/shm/meshinit-node-<random> (tmpfs: etcd's
//     fsyncs cost nothing, and it must be short, since containerd's shim socket directory is at most
//     38 characters). Fixed paths the parts insist on, created only if missing and then removed:
//     /var/lib/kubelet/device-plugins (the kubelet's device-plugin socket; its pki and
//     /var/log/pods are moved into the root by --cert-dir and podLogsDir), /var/log/containers (the
//     kubelet's links to container logs), /var/lib/cni (libcni's cache of results, which containerd
//     does not let one move). Where one of them already existed, only this node's entries in it are
//     removed.
//   - Mounts: containers' root filesystems, the pods' network namespaces (containerd's
//     netns_mounts_under_state_dir keeps them in the root, not /run/netns), volumes, and the
//     kubelet's rshared bind mount of its root dir. Undone: every mount at or under the root is
//     unmounted (lazily, deepest first).
//   - cgroups: /meshinit-node in every hierarchy (/sys/fs/cgroup/<controller>/meshinit-node and
//     unified/meshinit-node): the kubelet's cgroupRoot, under which kubepods and every pod go.
//     Undone: their processes killed, removed deepest first.
//   - Network: the bridge meshinit-node with 10.244.250.1/24 (kube-apiserver listens there on 443,
//     which is also the kubernetes Service's ClusterIP, so that pods reach it without kube-proxy,
//     and the kubelet on a free port: the API server will not advertise 127.0.0.1) and
//     fd00:10:244:250::1/64, and the pods' veths on it. Pods are dual-stack, with default routes
//     through the bridge, as in a cluster. The bridge CNI plugin runs with isGateway and ipMasq
//     off, and the kubelet with makeIPTablesUtilChains off, so no iptables rule of the host
//     changes. Undone: the veths and the bridge deleted.
//   - sysctls: the kubelet sets vm.overcommit_memory=1, vm.panic_on_oom=0, kernel.panic=10,
//     kernel.panic_on_oops=1, kernel.keys.root_maxkeys and kernel.keys.root_maxbytes. Undone: the
//     values saved before are written back (not after a reboot, which restored them already).
//
// By hand, after a crash, as root: `go test ./test/node -run TestRecover` does what the next Start
// would. Without Go: read /run/meshinit-node/state.json; kill the processes that name its root
// (`pkill -9 -f /dev/shm/meshinit-node-` and those in /sys/fs/cgroup/*/meshinit-node/**/cgroup.procs),
// `umount -l` every mount under the root (`grep meshinit-node /proc/self/mountinfo`), remove the
// cgroup directories deepest first (`find /sys/fs/cgroup/*/meshinit-node -depth -type d -exec
// rmdir {} \;`), `ip link del meshinit-node`, write back the saved sysctls, remove the root, the
// listed fixed paths and the state file.
//
// containerd is v2 (built from the module proxy by hack/provision.sh), not Debian's 1.6: the kubelet
// of 1.37 only keeps 1.6 working through a fallback (no CRI RuntimeConfig) due to end in 1.38, while
// 2.x is what it is written against. 2.x also lets the kit move the shim sockets into its root
// (the shim manager's socket_dir), where 1.6 always puts them in /run/containerd/s, and it installs
// no service, where Debian's package would start a containerd on the host. It costs a build of
// about a minute, once.
package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/meshinit/meshinit/test/prereq"
)

// Name is the node's name, and that of its bridge, cgroup and CNI network.
const Name = "meshinit-node"

// The node's network: a bridge of its own, whose subnets no route of the host may overlap. The API
// server listens on BridgeIP:443, which is also the kubernetes Service's ClusterIP, the first of
// ServiceRange; pods get addresses from podsFrom on, and IPv6 ones in Subnet6. Other ClusterIPs
// lead nowhere: there is no kube-proxy.
var (
	Subnet       = net.IPNet{IP: net.IPv4(10, 244, 250, 0).To4(), Mask: net.CIDRMask(24, 32)}
	BridgeIP     = net.IPv4(10, 244, 250, 1).To4()
	Subnet6      = net.IPNet{IP: net.ParseIP("fd00:10:244:250::"), Mask: net.CIDRMask(64, 128)}
	BridgeIP6    = net.ParseIP("fd00:10:244:250::1")
	ServiceRange = net.IPNet{IP: net.IPv4(10, 244, 250, 0).To4(), Mask: net.CIDRMask(28, 32)}
	podsFrom     = net.IPv4(10, 244, 250, 16).To4()
)

// startTimeout bounds each part's start: generous, on two cores shared with other tests.
const startTimeout = 90 * time.Second

// Options say how to start the node.
type Options struct {
	// Lock is a lock the caller holds already (AcquireLock), to look at the host before and after
	// the node; the node leaves it held when it stops. Nil: Start takes and releases its own.
	Lock *Lock
	// PauseImage is the sandbox image as an OCI image layout directory; empty for bin/images/pause
	// when it exists, else one built from test/node/pause.
	PauseImage string
	// Logf, if not nil, hears of each step with its time (the benchmark and failing tests say it).
	Logf func(format string, args ...any)
}

// Node is a running one-node cluster.
type Node struct {
	// Root holds all the node's files.
	Root string
	// Config reaches the API server as a cluster admin; Client and Clientset use it.
	Config    *rest.Config
	Client    client.Client
	Clientset kubernetes.Interface
	// Kubeconfig is the path of a kubeconfig for Config.
	Kubeconfig string
	// Started says how long each part took to start, for the benchmark.
	Started map[string]time.Duration

	opts     Options
	bin      string
	lock     *Lock
	ownsLock bool
	state    *state
	cp       *envtest.Environment
	cpLogs   []*os.File

	mu      sync.Mutex
	daemons map[string]*daemon
	stopped bool
}

// Start starts a node for a test and stops it when the test ends. A missing prerequisite (root,
// a binary of bin/) fails the test under CI=true and skips it elsewhere.
func Start(ctx context.Context, t testing.TB, opts Options) *Node {
	t.Helper()
	Prerequisites(t)
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	n, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("starting the node: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			n.DumpLogs(t.Logf)
		}
		if err := n.Stop(); err != nil {
			t.Errorf("stopping the node: %v", err)
		}
	})
	return n
}

// Prerequisites checks what a node needs from the machine: root, and the binaries that
// hack/provision.sh installs.
func Prerequisites(t testing.TB) {
	t.Helper()
	prereq.Root(t)
	bin := filepath.Join(prereq.RepoRoot(t), "bin")
	for _, name := range binaries {
		prereq.File(t, filepath.Join(bin, name))
	}
	prereq.Binary(t, "runc")
	prereq.File(t, "/usr/lib/cni/bridge")
	prereq.File(t, "/usr/lib/cni/host-local")
}

var binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "containerd", "containerd-shim-runc-v2", "ctr"}

// New starts a node; the caller must Stop it (TestMain, benchmarks). It first cleans up after a
// crashed run, if the state file says there was one.
func New(ctx context.Context, opts Options) (_ *Node, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	repo, err := prereq.FindRepoRoot(wd)
	if err != nil {
		return nil, err
	}
	n := &Node{opts: opts, bin: filepath.Join(repo, "bin"), daemons: map[string]*daemon{}, Started: map[string]time.Duration{}}
	for _, name := range binaries {
		if _, err := os.Stat(filepath.Join(n.bin, name)); err != nil {
			return nil, fmt.Errorf("%s is missing from %s (run: make provision)", name, n.bin)
		}
	}
	// The sandbox image before the lock: its first build takes seconds, which are not the node's
	// start and need not keep another node waiting.
	pause, err := n.pauseImage(ctx, repo)
	if err != nil {
		return nil, err
	}

	n.lock = opts.Lock
	if n.lock == nil {
		begin := time.Now()
		if n.lock, err = AcquireLock(ctx, opts.Logf); err != nil {
			return nil, err
		}
		n.ownsLock = true
		n.step("lock", begin)
	}
	defer func() {
		if err != nil {
			// The logs go with the root: what they end with goes into the error first.
			var logs strings.Builder
			n.DumpLogs(func(format string, args ...any) { fmt.Fprintf(&logs, "\n"+format, args...) })
			err = fmt.Errorf("%w%s", err, logs.String())
			if stopErr := n.Stop(); stopErr != nil {
				err = fmt.Errorf("%w (and stopping what had started: %v)", err, stopErr)
			}
		}
	}()
	begin := time.Now()
	if err := recoverLocked(opts.Logf); err != nil {
		return n, fmt.Errorf("cleaning up after a previous run: %w", err)
	}
	n.step("cleanup of a previous run", begin)
	begin = time.Now()
	if err := n.prepareHost(); err != nil {
		return n, err
	}
	if err := n.start(ctx, pause); err != nil {
		return n, err
	}
	n.step(StepReady, begin)
	return n, nil
}

// StepReady is the key in Started of the whole start, from the host's preparation to the node
// Ready: what a test waits for, less the lock and a previous run's cleanup.
const StepReady = "node Ready, in all"

// step records how long a part took since begin.
func (n *Node) step(what string, begin time.Time) {
	d := time.Since(begin)
	n.mu.Lock()
	n.Started[what] = d
	n.mu.Unlock()
	n.opts.Logf("node: %s: %v", what, d.Round(time.Millisecond))
}

// Stop stops every part of the node and undoes what it did to the host. It is safe to call twice.
func (n *Node) Stop() error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	n.mu.Unlock()
	var errs []error
	if n.state != nil {
		// The kubelet first, so that it does not restart what is being stopped.
		for _, name := range []string{"kubelet", "kube-scheduler", "kube-controller-manager", "containerd"} {
			if d := n.daemon(name); d != nil {
				d.stop(5 * time.Second)
			}
		}
		// The pods' processes before the control plane: the API server's graceful shutdown waits
		// for the watches of clients in pods (an injector's) for a minute.
		if err := killPods(n.state.Root); err != nil {
			errs = append(errs, err)
		}
		if n.cp != nil {
			if err := n.cp.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stopping the control plane: %w", err))
			}
		}
		for _, f := range n.cpLogs {
			f.Close()
		}
		if err := cleanup(n.state, n.opts.Logf); err != nil {
			errs = append(errs, err)
		}
	}
	if n.ownsLock && n.lock != nil {
		n.lock.Release()
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

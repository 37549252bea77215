package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criSocket is containerd's socket, which the kubelet and ctr use too.
func (n *Node) criSocket() string { return filepath.Join(n.Root, "containerd.sock") }

// criConn connects to containerd's CRI; the connection is closed when ctx ends.
func (n *Node) criConn(ctx context.Context) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("unix://"+n.criSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	context.AfterFunc(ctx, func() { conn.Close() })
	return conn, nil
}

// CRI returns a client of containerd's CRI runtime service, the API the kubelet uses; the
// connection is closed when ctx ends.
func (n *Node) CRI(ctx context.Context) (cri.RuntimeServiceClient, error) {
	conn, err := n.criConn(ctx)
	if err != nil {
		return nil, err
	}
	return cri.NewRuntimeServiceClient(conn), nil
}

// Images lists the names of the images the kubelet sees (CRI's image service), such as
// "meshinit.test/pause:node".
func (n *Node) Images(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := n.criConn(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := cri.NewImageServiceClient(conn).ListImages(ctx, &cri.ListImagesRequest{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, img := range resp.Images {
		names = append(names, img.RepoTags...)
	}
	return names, nil
}

// waitRuntimeReady waits until containerd answers over CRI that its runtime and network are ready,
// as the kubelet needs them.
func (n *Node) waitRuntimeReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	c, err := n.CRI(ctx)
	if err != nil {
		return err
	}
	d := n.daemon("containerd")
	var last error
	for {
		// WaitForReady: the call waits for the socket to accept, rather than failing at once.
		resp, err := c.Status(ctx, &cri.StatusRequest{}, grpc.WaitForReady(true))
		if err == nil {
			last = fmt.Errorf("conditions %v", resp.GetStatus().GetConditions())
			ready := 0
			for _, cond := range resp.GetStatus().GetConditions() {
				if (cond.Type == cri.RuntimeReady || cond.Type == cri.NetworkReady) && cond.Status {
					ready++
				}
			}
			if ready == 2 {
				return nil
			}
		} else {
			last = err
		}
		// The CRI plugin answers "not initialized" for a moment after the socket opens.
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd's CRI is not ready: %v", last)
		case <-d.exited:
			return d.exitedErr()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sandbox returns the CRI pod sandbox of a running pod.
func (n *Node) sandbox(ctx context.Context, pod *corev1.Pod) (*cri.PodSandboxStatusResponse, error) {
	c, err := n.CRI(ctx)
	if err != nil {
		return nil, err
	}
	list, err := c.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{
		State:         &cri.PodSandboxStateValue{State: cri.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{"io.kubernetes.pod.uid": string(pod.UID)},
	}})
	if err != nil {
		return nil, err
	}
	if len(list.Items) != 1 {
		return nil, fmt.Errorf("pod %s/%s has %d ready sandboxes, want 1", pod.Namespace, pod.Name, len(list.Items))
	}
	return c.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: list.Items[0].Id, Verbose: true})
}

// PodNetNS returns the path of a running pod's network namespace (a mount under the node's root,
// which containerd keeps), to enter with nsenter --net= or netns.GetFromPath.
func (n *Node) PodNetNS(ctx context.Context, pod *corev1.Pod) (string, error) {
	st, err := n.sandbox(ctx, pod)
	if err != nil {
		return "", err
	}
	// containerd's verbose info holds the sandbox's OCI spec, which names the namespace it joined.
	var info struct {
		Pid         int `json:"pid"`
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct{ Type, Path string } `json:"namespaces"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if err := json.Unmarshal([]byte(st.GetInfo()["info"]), &info); err != nil {
		return "", fmt.Errorf("containerd's sandbox info: %w", err)
	}
	for _, ns := range info.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" && ns.Path != "" {
			return ns.Path, nil
		}
	}
	if info.Pid > 0 {
		return fmt.Sprintf("/proc/%d/ns/net", info.Pid), nil
	}
	return "", fmt.Errorf("no network namespace in the sandbox of %s/%s", pod.Namespace, pod.Name)
}

// Nsenter runs a command of the host in a pod's network namespace, as one debugs a pod from its
// node, and returns its combined output.
func (n *Node) Nsenter(ctx context.Context, pod *corev1.Pod, args ...string) ([]byte, error) {
	path, err := n.PodNetNS(ctx, pod)
	if err != nil {
		return nil, err
	}
	out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + path, "--"}, args...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("nsenter --net=%s %v: %w\n%s", path, args, err, out)
	}
	return out, nil
}

// InPodNetNS runs fn on a thread that is in a pod's network namespace: sockets fn opens are the
// pod's.
func (n *Node) InPodNetNS(ctx context.Context, pod *corev1.Pod, fn func() error) error {
	path, err := n.PodNetNS(ctx, pod)
	if err != nil {
		return err
	}
	return inNetNS(path, fn)
}

// PodDialer returns a dial function whose connections are the pod's, made in its network
// namespace, from its address, whichever goroutine then uses them.
func (n *Node) PodDialer(ctx context.Context, pod *corev1.Pod) (func(network, addr string) (net.Conn, error), error) {
	path, err := n.PodNetNS(ctx, pod)
	if err != nil {
		return nil, err
	}
	return func(network, addr string) (conn net.Conn, err error) {
		err = inNetNS(path, func() error {
			conn, err = net.DialTimeout(network, addr, 10*time.Second)
			return err
		})
		return conn, err
	}, nil
}

// inNetNS runs fn on a thread that is in the network namespace at path.
func inNetNS(path string, fn func() error) error {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread never goes back to the pool: it ends with the goroutine, namespace and all.
		runtime.LockOSThread()
		if err := netns.Set(target); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// ExecSync runs a command in a pod's container through CRI, as `kubectl exec` does without the
// streaming, and returns its stdout, stderr and exit code.
func (n *Node) ExecSync(ctx context.Context, pod *corev1.Pod, container string, cmd ...string) (stdout, stderr []byte, code int32, err error) {
	var id string
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses} {
		for _, s := range list {
			if s.Name == container && s.ContainerID != "" {
				id = s.ContainerID
			}
		}
	}
	if id == "" {
		return nil, nil, 0, fmt.Errorf("pod %s/%s has no running container %q", pod.Namespace, pod.Name, container)
	}
	id = strings.TrimPrefix(id, "containerd://")
	c, err := n.CRI(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	resp, err := c.ExecSync(ctx, &cri.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 60})
	if err != nil {
		return nil, nil, 0, err
	}
	return resp.Stdout, resp.Stderr, resp.ExitCode, nil
}

// ctr runs containerd's ctr against the node's containerd, in the k8s.io namespace the kubelet's
// images and containers live in.
func (n *Node) ctr(ctx context.Context, stdin *os.File, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(n.bin, "ctr"), append([]string{"--address", n.criSocket(), "--namespace", "k8s.io"}, args...)...)
	cmd.Env = n.env()
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("ctr %v: %w\n%s", args, err, out)
	}
	return out, nil
}

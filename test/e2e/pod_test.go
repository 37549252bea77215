package e2e

import (
	"context"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/cniconf"
	"github.com/meshinit/meshinit/test/netkit"
)

// meshedNamespace creates a namespace labelled for injection.
func (c *cluster) meshedNamespace(ctx context.Context, t *testing.T, name string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{api.LabelSidecarInjection: "enabled"}}}
	if err := c.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
}

// app is a one-container pod with the given annotations.
func app(namespace, name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 22}}}}},
	}
}

// create creates the pod through the API server, and returns it as stored, with the admission
// warnings the API server passed on.
func (c *cluster) create(ctx context.Context, pod *corev1.Pod) (*corev1.Pod, []string, error) {
	warnings, err := create(ctx, c.Config, pod)
	return pod, warnings, err
}

type warningLog struct{ messages []string }

func (w *warningLog) HandleWarningHeader(_ int, _ string, message string) {
	w.messages = append(w.messages, message)
}

// fieldRef matches the downward API's references to one annotation or label.
var fieldRef = regexp.MustCompile(`^metadata\.(annotations|labels)\['([^']+)'\]$`)

// asKubelet returns the command line of the pod's init container name as kubelet would run it:
// its command, as the program at that path in its image, which programs maps to one on this
// host, then its arguments; with its volumes laid out in a temporary directory the way kubelet
// mounts them (emptyDirs empty, downward API items written from the pod's annotations and
// labels), and the paths in its arguments, flags' values too, pointing there.
func asKubelet(t *testing.T, pod *corev1.Pod, name string, programs map[string]string) []string {
	t.Helper()
	var container *corev1.Container
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			container = &pod.Spec.InitContainers[i]
		}
	}
	if container == nil {
		t.Fatalf("pod %s/%s has no init container %s", pod.Namespace, pod.Name, name)
	}
	root := t.TempDir()
	mounts := map[string]string{}
	for _, m := range container.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == m.Name {
				vol = &pod.Spec.Volumes[i]
			}
		}
		dir := filepath.Join(root, m.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case vol == nil:
			t.Fatalf("%s mounts %s, which is not a volume of the pod", name, m.Name)
		case vol.EmptyDir != nil:
		case vol.DownwardAPI != nil:
			for _, item := range vol.DownwardAPI.Items {
				ref := fieldRef.FindStringSubmatch(item.FieldRef.FieldPath)
				if ref == nil {
					t.Fatalf("%s: field %s is not an annotation or a label", m.Name, item.FieldRef.FieldPath)
				}
				value := pod.Annotations[ref[2]]
				if ref[1] == "labels" {
					value = pod.Labels[ref[2]]
				}
				file := filepath.Join(dir, item.Path)
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(value), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		default:
			t.Fatalf("%s mounts %s, a kind of volume this test does not lay out", name, m.Name)
		}
		mounts[m.MountPath] = dir
	}
	// The deepest mount holds a path, as in the container: /tmp/transparent-proxy/base in /tmp.
	mountPaths := slices.SortedFunc(maps.Keys(mounts), func(a, b string) int { return len(b) - len(a) })
	local := func(path string) string {
		for _, mountPath := range mountPaths {
			if rest, ok := strings.CutPrefix(path, mountPath+"/"); ok {
				return filepath.Join(mounts[mountPath], rest)
			}
		}
		return path
	}
	if len(container.Command) == 0 {
		t.Fatalf("%s names no command; this test knows its image only by the programs %v", name, programs)
	}
	program, ok := programs[container.Command[0]]
	if !ok {
		t.Fatalf("%s runs %s, which this test has no program for", name, container.Command[0])
	}
	cmd := []string{program}
	for _, arg := range slices.Concat(container.Command[1:], container.Args) {
		if flag, value, ok := strings.Cut(arg, "="); ok && strings.HasPrefix(flag, "-") {
			arg = flag + "=" + local(value)
		} else {
			arg = local(arg)
		}
		cmd = append(cmd, arg)
	}
	return cmd
}

// kumactl is kuma-init as meshinit's image has it at /usr/bin/kumactl, the program of the
// injected kuma-init's command line.
func kumactl(t *testing.T, kumaInit string) map[string]string {
	t.Helper()
	program := filepath.Join(t.TempDir(), "kumactl")
	// A kuma-init that does not know kumactl's command words yet runs its default command, the
	// install, on the same flags.
	help, _ := exec.Command(kumaInit, "install", "transparent-proxy", "--help").CombinedOutput()
	if strings.Contains(string(help), "install transparent-proxy") {
		if err := os.Symlink(kumaInit, program); err != nil {
			t.Fatal(err)
		}
	} else {
		script := "#!/bin/sh\nif [ \"$1 $2\" = \"install transparent-proxy\" ]; then shift 2; fi\nexec " + kumaInit + " \"$@\"\n"
		if err := os.WriteFile(program, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return map[string]string{"/usr/bin/kumactl": program}
}

// cniAdd runs kuma-cni's ADD for the pod's network namespace ns through libcni, alone, as Multus
// delegates an extra attachment to it; kuma-cni fetches the pod from the API server.
func cniAdd(ctx context.Context, t *testing.T, kumaCNI, kubeconfig string, ns *netkit.Namespace, pod *corev1.Pod) {
	t.Helper()
	list := cniconf.List(t, "1.0.0", cniconf.KumaCNI(kubeconfig))
	cni := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(kumaCNI)}, t.TempDir(), nil)
	rt := cniconf.Runtime(ns, pod.Namespace, pod.Name, "net1")
	if _, err := cni.AddNetworkList(ctx, list, rt); err != nil {
		t.Fatalf("kuma-cni ADD for %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	t.Cleanup(func() {
		if err := cni.DelNetworkList(context.Background(), list, rt); err != nil {
			t.Errorf("kuma-cni DEL: %v", err)
		}
	})
}

// Package hoststate records what a one-node cluster of test/node could leave on the host, so that
// a test can show that the host is as it was before the node: sysctls, mounts, fixed paths,
// cgroups, links, iptables rules and processes. Other tests run on the machine at the same time:
// what they change (their network namespaces, veths and control planes) is left out.
package hoststate

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/meshinit/meshinit/test/node"
)

// State is what the node may change on the host, as "what: value" lines.
type State map[string]string

// sysctlTrees are the settings compared: the kubelet writes some of vm and kernel, and containerd,
// runc and the bridge plugin could write the others.
var sysctlTrees = []string{"vm", "kernel", "fs/inotify", "net/core", "net/ipv4/conf/all", "net/ipv4/conf/default",
	"net/ipv6/conf/all", "net/ipv6/conf/default", "net/bridge", "net/ipv4/ip_forward", "net/ipv4/ip_local_port_range"}

// volatileSysctls change by themselves: counters, and the perf sample rate, which the kernel
// lowers when the machine is busy.
var volatileSysctls = regexp.MustCompile(`^kernel/(random/|ns_last_pid|pty/nr|sched_domain|tainted|perf_event_max_sample_rate|.*_count$)|^fs/inotify/.*_instances$`)

// fixedPaths are the places outside its root where a node's parts write by default.
var fixedPaths = []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/run/containerd",
	"/var/lib/cni", "/etc/cni", "/opt/cni", "/opt/containerd", "/opt/nri", "/etc/nri", "/var/run/nri",
	"/etc/containerd", "/var/lib/containerd", "/etc/cdi", "/var/run/cdi", "/etc/kubernetes",
	"/usr/libexec/kubernetes", "/var/lib/dockershim", "/run/runc", "/usr/lib/cni"}

// listedDirs are listed to one level, for anything new at a place no one thought of.
var listedDirs = []string{"/var/lib", "/var/log", "/run", "/etc", "/opt", "/var/run", "/sys/fs/cgroup"}

// othersEntries are made in listedDirs by the other tests that run meanwhile: ip netns (/run/netns,
// /etc/netns for a namespace's resolv.conf) and legacy iptables (/run/xtables.lock).
var othersEntries = map[string]bool{"netns": true, "xtables.lock": true}

// Take records the host's sysctls, mounts, fixed paths, cgroups, links, iptables rules and
// processes that a node could leave behind. Other tests' network namespaces (/run/netns, except
// containerd's cni-*) and their own control planes are not the node's, and are left out.
func Take() (State, error) {
	h := State{}
	for _, tree := range sysctlTrees {
		_ = filepath.WalkDir(filepath.Join("/proc/sys", tree), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			key := strings.TrimPrefix(p, "/proc/sys/")
			if volatileSysctls.MatchString(key) {
				return nil
			}
			if v, err := os.ReadFile(p); err == nil {
				h["sysctl "+key] = strings.Join(strings.Fields(string(v)), " ")
			}
			return nil
		})
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(mounts)), "\n") {
		f := strings.Fields(line)
		point := f[4]
		if strings.HasPrefix(point, "/run/netns/") && !strings.HasPrefix(point, "/run/netns/cni-") {
			continue
		}
		h["mount "+point] += strings.Join(f[len(f)-3:len(f)-1], " ") + ";"
	}
	for _, p := range fixedPaths {
		h["path "+p] = listTree(p)
	}
	for _, d := range listedDirs {
		entries, _ := os.ReadDir(d)
		var names []string
		for _, e := range entries {
			if !othersEntries[e.Name()] {
				names = append(names, e.Name())
			}
		}
		h["dir "+d] = strings.Join(names, " ")
	}
	for _, d := range []string{"/dev/shm", "/tmp"} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			// The parts make directories and sockets; a regular file of such a name in /tmp is
			// another session's (a shell's redirected output).
			if d == "/tmp" && e.Type().IsRegular() {
				continue
			}
			if n := e.Name(); strings.Contains(n, "meshinit-node") || strings.HasPrefix(n, "containerd") || strings.HasPrefix(n, "runc") ||
				strings.HasPrefix(n, "cni") || strings.HasPrefix(n, "kube") {
				h["file "+filepath.Join(d, n)] = "present"
			}
		}
	}
	cgroups, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, c := range cgroups {
		entries, _ := os.ReadDir(c)
		var dirs []string
		for _, e := range entries {
			if e.IsDir() {
				dirs = append(dirs, e.Name())
			}
		}
		h["cgroup "+c] = strings.Join(dirs, " ")
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		// Other tests' CNI plugins (ptp) add and delete veths in this namespace all the time: the
		// node's own are those on its bridge, which PortsGone checks.
		if l.Type() != "veth" {
			h["link "+l.Attrs().Name] = l.Type()
		}
	}
	for _, save := range []string{"iptables-save", "ip6tables-save"} {
		out, err := exec.Command(save).Output()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", save, err)
		}
		h["rules "+save] = normalizeRules(string(out))
	}
	for pid, cmdline := range Processes() {
		h["process "+strconv.Itoa(pid)] = cmdline
	}
	return h, nil
}

// listTree lists a directory tree, or says it is missing.
func listTree(root string) string {
	var entries []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries = append(entries, strings.TrimPrefix(p, root))
		return nil
	})
	if err != nil {
		return "missing"
	}
	return strings.Join(entries, " ")
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)

// normalizeRules drops the comments (dates) and counters of iptables-save.
func normalizeRules(s string) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if line := sc.Text(); !strings.HasPrefix(line, "#") {
			lines = append(lines, counters.ReplaceAllString(line, ""))
		}
	}
	return strings.Join(lines, "\n")
}

// nodeBinaries are the programs only a node runs, its pods' included (other tests run etcd,
// kube-apiserver and the project's binaries at the same time).
var nodeBinaries = map[string]bool{"containerd": true, "containerd-shim-runc-v2": true, "ctr": true, "kubelet": true,
	"kube-controller-manager": true, "kube-scheduler": true, "runc": true, "pause": true, "tool": true,
	"kuma-dp": true, "echo": true}

// Processes lists the processes that could be a node's: those naming a node root, and those
// running the node's programs.
func Processes() map[int]string {
	procs := map[int]string{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(raw) == 0 {
			continue
		}
		cmdline := strings.ReplaceAll(strings.TrimRight(string(raw), "\x00"), "\x00", " ")
		if strings.Contains(cmdline, "meshinit-node") || nodeBinaries[filepath.Base(strings.Fields(cmdline)[0])] {
			procs[pid] = cmdline
		}
	}
	return procs
}

// Changes lists the differences between two records of the host, one a line; "" when there is
// none.
func Changes(before, after State) string {
	var out []string
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		b, inBefore := before[k]
		a, inAfter := after[k]
		switch {
		case !inBefore:
			out = append(out, fmt.Sprintf("new: %s = %s", k, a))
		case !inAfter:
			out = append(out, fmt.Sprintf("gone: %s (was %s)", k, b))
		case a != b:
			out = append(out, fmt.Sprintf("changed: %s\n  before: %s\n  after:  %s", k, b, a))
		}
	}
	return strings.Join(out, "\n")
}

// BridgePorts lists the links on the node's bridge: its pods' veths.
func BridgePorts() ([]string, error) {
	br, err := netlink.LinkByName(node.Name)
	if err != nil {
		return nil, fmt.Errorf("the node's bridge: %w", err)
	}
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			names = append(names, l.Attrs().Name)
		}
	}
	return names, nil
}

// PortsGone checks that the node's veths, as BridgePorts listed them while it ran, went with it.
func PortsGone(ports []string) error {
	if len(ports) == 0 {
		return errors.New("the node had no veth on its bridge; the check proves nothing")
	}
	var left []string
	for _, name := range ports {
		if _, err := netlink.LinkByName(name); err == nil {
			left = append(left, name)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("the node's veths %v are still there", left)
	}
	return nil
}

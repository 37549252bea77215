package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The fixed places of the kit: one node per machine, whichever work tree or test process runs it.
const (
	stateDir   = "/run/meshinit-node"
	lockFile   = stateDir + "/lock"
	holderFile = stateDir + "/holder"
	stateFile  = stateDir + "/state.json"
	cgroupRoot = "/" + Name
	rootPrefix = "/dev/shm/" + Name + "-"
)

// kubeletSysctls are the settings the kubelet's container manager writes (setupKernelTunables).
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// fixedPaths are the paths outside the root that the parts create whatever they are told.
var fixedPaths = []string{
	"/var/lib/kubelet/device-plugins", // the kubelet's device-plugin socket, whatever its root dir
	"/var/log/containers",             // the kubelet's links to container logs
	"/var/log/pods",                   // moved into the root by podLogsDir; kept in case
	"/var/lib/cni",                    // libcni's result cache, which containerd does not let one move
}

// state is what a run changed, written before each change, so that whoever comes next can undo it.
type state struct {
	BootID string `json:"bootID"`
	PID    int    `json:"pid"`
	Root   string `json:"root"`
	// Sysctls are the values before the kubelet started, by /proc/sys path.
	Sysctls map[string]string `json:"sysctls,omitempty"`
	// Created are fixed paths that did not exist and are removed whole.
	Created []string `json:"created,omitempty"`
	// Shared are fixed paths that existed: only this node's entries in them are removed.
	Shared []string `json:"shared,omitempty"`
	Bridge bool     `json:"bridge,omitempty"`
	Cgroup bool     `json:"cgroup,omitempty"`
}

func (s *state) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := stateFile + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, stateFile)
}

func bootID() string {
	data, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(data))
}

// Lock is the machine's node lock: an exclusive flock, released by the kernel when its holder dies.
type Lock struct{ f *os.File }

// AcquireLock waits until no other node runs on this machine and takes the lock; logf hears whom it
// waits for. Test processes of one `go test ./...` run wait for each other here.
func AcquireLock(ctx context.Context, logf func(string, ...any)) (*Lock, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", lockFile, err)
		}
		holder, _ := os.ReadFile(holderFile)
		if logf != nil {
			logf("node: another node runs on this machine (%s); waiting for it to stop (lock %s)", strings.TrimSpace(string(holder)), lockFile)
		}
		// flock(2) cannot be given a deadline: it blocks in a goroutine that gives the lock back if
		// no one wants it any more.
		// Unbuffered: the lock is handed over only to a waiter still there.
		got := make(chan error)
		abandon := make(chan struct{})
		go func() {
			err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
			select {
			case got <- err:
			case <-abandon:
				f.Close()
			}
		}()
		select {
		case err := <-got:
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("locking %s: %w", lockFile, err)
			}
		case <-ctx.Done():
			close(abandon)
			return nil, fmt.Errorf("waiting for the node lock %s held by %s: %w", lockFile, strings.TrimSpace(string(holder)), ctx.Err())
		}
	}
	exe, _ := os.Executable()
	_ = os.WriteFile(holderFile, fmt.Appendf(nil, "pid %d, %s, since %s\n", os.Getpid(), exe, time.Now().Format(time.RFC3339)), 0o644)
	return &Lock{f: f}, nil
}

// Release gives the lock back.
func (l *Lock) Release() {
	if l.f != nil {
		_ = os.Remove(holderFile)
		_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}

// Recover undoes what a crashed run left on the host, as the next Start would; it waits for the
// lock like a node.
func Recover(ctx context.Context, logf func(string, ...any)) error {
	l, err := AcquireLock(ctx, logf)
	if err != nil {
		return err
	}
	defer l.Release()
	return l.Recover(logf)
}

// Recover undoes what a crashed run left on the host, under a lock already held.
func (l *Lock) Recover(logf func(string, ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return recoverLocked(logf)
}

func recoverLocked(logf func(string, ...any)) error {
	data, err := os.ReadFile(stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("reading %s: %w (remove it after cleaning up by hand, as test/node's package comment says)", stateFile, err)
	}
	logf("node: cleaning up after a run that did not stop (pid %d, root %s)", s.PID, s.Root)
	return cleanup(&s, logf)
}

// prepareHost makes the node's root, cgroup and bridge, each recorded in the state file first.
func (n *Node) prepareHost() error {
	if err := checkSubnetFree(); err != nil {
		return err
	}
	// The root is named, and recorded, before it exists: a run killed in between leaves nothing
	// unrecorded.
	root := rootPrefix + strconv.FormatUint(uint64(rand.Uint32()), 10)
	n.state = &state{BootID: bootID(), PID: os.Getpid(), Root: root, Sysctls: map[string]string{}}
	if err := n.state.save(); err != nil {
		n.state = nil
		return err
	}
	if err := os.Mkdir(root, 0o700); err != nil {
		return err
	}
	n.Root = root
	for _, dir := range []string{"logs", "tmp"} {
		if err := os.Mkdir(filepath.Join(root, dir), 0o755); err != nil {
			return err
		}
	}
	// The kubelet's sysctls as they are, recorded before anything can change them.
	for _, key := range kubeletSysctls {
		v, err := os.ReadFile("/proc/sys/" + key)
		if err != nil {
			return err
		}
		n.state.Sysctls[key] = strings.TrimSpace(string(v))
	}
	for _, p := range fixedPaths {
		top, err := topMissing(p)
		if err != nil {
			return err
		}
		if top == "" {
			n.state.Shared = append(n.state.Shared, p)
		} else {
			n.state.Created = append(n.state.Created, top)
		}
	}
	n.state.Cgroup, n.state.Bridge = true, true
	if err := n.state.save(); err != nil {
		return err
	}
	if err := makeCgroups(); err != nil {
		return err
	}
	return makeBridge()
}

// topMissing returns the topmost missing directory of p, or "" if p exists.
func topMissing(p string) (string, error) {
	if _, err := os.Lstat(p); err == nil {
		return "", nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	for {
		parent := filepath.Dir(p)
		if _, err := os.Lstat(parent); err == nil || parent == p {
			return p, nil
		}
		p = parent
	}
}

// checkSubnetFree refuses a host where a route already covers part of the node's subnets (other
// than the node's own bridge, which a crashed run may have left and cleanup removes).
func checkSubnetFree() error {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			continue
		}
		for _, subnet := range []net.IPNet{Subnet, Subnet6} {
			if !r.Dst.Contains(subnet.IP) && !subnet.Contains(r.Dst.IP) {
				continue
			}
			if link, err := netlink.LinkByIndex(r.LinkIndex); err == nil && link.Attrs().Name == Name {
				continue
			}
			return fmt.Errorf("the node's subnet %s overlaps the host's route %s: another network uses it", subnet.String(), r.Dst)
		}
	}
	return nil
}

// cgroupMounts lists the mount points of the cgroup hierarchies.
func cgroupMounts() ([]string, error) {
	var dirs []string
	err := eachMount(func(point, fstype string) {
		if fstype == "cgroup" || fstype == "cgroup2" {
			dirs = append(dirs, point)
		}
	})
	return dirs, err
}

// makeCgroups makes the kubelet's cgroupRoot in every hierarchy: the kubelet wants it to exist.
func makeCgroups() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		dir := filepath.Join(m, cgroupRoot)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		// A new cpuset has no CPUs and no memory nodes: give it its parent's.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(m, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func makeBridge() error {
	if link, err := netlink.LinkByName(Name); err == nil {
		if err := netlink.LinkDel(link); err != nil {
			return err
		}
	}
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: Name}}
	if err := netlink.LinkAdd(br); err != nil {
		return fmt.Errorf("creating the bridge %s: %w", Name, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: BridgeIP, Mask: Subnet.Mask}}
	if err := netlink.AddrAdd(br, addr); err != nil {
		return err
	}
	// No duplicate address detection: the address is usable at once, and the bridge is the node's.
	addr6 := &netlink.Addr{IPNet: &net.IPNet{IP: BridgeIP6, Mask: Subnet6.Mask}, Flags: unix.IFA_F_NODAD}
	if err := netlink.AddrAdd(br, addr6); err != nil {
		return err
	}
	return netlink.LinkSetUp(br)
}

// cleanup undoes everything s records, whether its run stopped or crashed, and removes s's file.
// It goes on after an error, so that as much as possible is undone, and returns them all.
func cleanup(s *state, logf func(string, ...any)) error {
	var errs []error
	sameBoot := s.BootID == bootID()
	var ports []string
	if s.Bridge {
		ports = bridgePorts()
	}
	if sameBoot && s.Root != "" {
		if err := killProcesses(s.Root); err != nil {
			errs = append(errs, err)
		}
		if err := unmountUnder(s.Root); err != nil {
			errs = append(errs, err)
		}
	}
	if sameBoot && s.Cgroup {
		if err := removeCgroups(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Bridge {
		if err := removeBridge(ports); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range s.Created {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range s.Shared {
		if err := removeEntriesOf(p, s.Root); err != nil {
			errs = append(errs, err)
		}
	}
	if sameBoot {
		for key, v := range s.Sysctls {
			if err := os.WriteFile("/proc/sys/"+key, []byte(v), 0o644); err != nil {
				errs = append(errs, fmt.Errorf("restoring %s=%s: %w", strings.ReplaceAll(key, "/", "."), v, err))
			}
		}
	}
	if s.Root != "" && strings.HasPrefix(s.Root, rootPrefix) {
		if err := os.RemoveAll(s.Root); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("cleaning up the node: %v (the state stays in %s)", errs, stateFile)
	}
	if err := os.Remove(stateFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// killProcesses kills every process whose command line names a file under root (the parts,
// containerd's shims) and every process in the node's cgroups (the pods'), until none is left.
func killProcesses(root string) error {
	return killUntilGone(func() []int { return append(processesNaming(root+"/"), cgroupProcesses()...) })
}

// killPods kills the pods' processes (those in the node's cgroups) and containerd's shims, which
// name root, until none is left.
func killPods(root string) error {
	return killUntilGone(func() []int {
		var shims []int
		for _, pid := range processesNaming(root + "/") {
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && filepath.Base(exe) == "containerd-shim-runc-v2" {
				shims = append(shims, pid)
			}
		}
		return append(shims, cgroupProcesses()...)
	})
}

// killUntilGone kills the processes list returns with SIGKILL until it returns none.
func killUntilGone(list func() []int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := list()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of the node survive SIGKILL", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		// Wait for each to be gone (reaped by its parent, or by init for a crashed run's orphans):
		// a pidfd becomes readable when its process exits.
		for _, pid := range pids {
			waitGone(pid, time.Until(deadline))
		}
	}
}

// waitGone waits until pid has exited, at most limit.
func waitGone(pid int, limit time.Duration) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // gone already
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	_, _ = unix.Poll(fds, int(limit.Milliseconds()))
}

// processesNaming lists the processes, other than this one, whose command line contains s.
func processesNaming(s string) []int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), s) {
			continue
		}
		// Zombies wait for their parent; killing them again does nothing.
		if stat, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// cgroupProcesses lists the processes in the node's cgroups, in any hierarchy.
func cgroupProcesses() []int {
	mounts, _ := cgroupMounts()
	seen := map[int]bool{}
	var pids []int
	for _, m := range mounts {
		_ = filepath.WalkDir(filepath.Join(m, cgroupRoot), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// eachMount calls fn with each mount point of this mount namespace, unescaped, and its type.
func eachMount(fn func(point, fstype string)) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, field := range fields {
			if field == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+1 >= len(fields) {
			continue
		}
		fn(unescapeMount(fields[4]), fields[sep+1])
	}
	return sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder unmounts every mount at or under root, deepest first, until none is left (a bind
// mount may hide others under it).
func unmountUnder(root string) error {
	for range 10 {
		var points []string
		if err := eachMount(func(point, _ string) {
			if point == root || strings.HasPrefix(point, root+"/") {
				points = append(points, point)
			}
		}); err != nil {
			return err
		}
		if len(points) == 0 {
			return nil
		}
		sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
		for _, p := range points {
			if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmounting %s: %w", p, err)
			}
		}
	}
	return fmt.Errorf("mounts under %s keep coming back", root)
}

// removeCgroups removes the node's cgroup directories, deepest first, in every hierarchy.
func removeCgroups() error {
	mounts, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range mounts {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(m, cgroupRoot), func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			// A cgroup whose last process just died may be busy for a moment: retry on EBUSY.
			var err error
			for try := 0; try < 100; try++ {
				if err = unix.Rmdir(dirs[i]); !errors.Is(err, unix.EBUSY) {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], err))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%v", errs)
	}
	return nil
}

// bridgePorts lists the links on the node's bridge: the host ends of the pods' veths.
func bridgePorts() []string {
	br, err := netlink.LinkByName(Name)
	if err != nil {
		return nil
	}
	links, _ := netlink.LinkList()
	var names []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			names = append(names, l.Attrs().Name)
		}
	}
	return names
}

// removeBridge deletes the pods' veths, named before their namespaces went (a dying namespace takes
// its veth pair with it, but only later, after the veth has left the bridge), and the bridge.
func removeBridge(ports []string) error {
	for _, name := range append(ports, bridgePorts()...) {
		if l, err := netlink.LinkByName(name); err == nil {
			if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				if _, gone := netlink.LinkByName(name); gone != nil {
					continue // the namespace's end took it meanwhile
				}
				return fmt.Errorf("deleting %s from the bridge: %w", name, err)
			}
		}
	}
	br, err := netlink.LinkByName(Name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		return err
	}
	if err := netlink.LinkDel(br); err != nil {
		return fmt.Errorf("deleting the bridge %s: %w", Name, err)
	}
	return nil
}

// removeEntriesOf removes, from a fixed directory that existed before the node, what the node put
// there: links into its root, entries named after it (libcni's results of its network), and the
// kubelet's device-plugin socket and checkpoint.
func removeEntriesOf(dir, root string) error {
	var doomed []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if p == dir {
			return nil
		}
		name := d.Name()
		switch {
		case strings.Contains(name, Name):
			doomed = append(doomed, p)
		case d.Type()&fs.ModeSymlink != 0:
			if target, err := os.Readlink(p); err == nil && root != "" && strings.HasPrefix(target, root+"/") {
				doomed = append(doomed, p)
			}
		case dir == "/var/lib/kubelet/device-plugins" && (name == "kubelet.sock" || name == "kubelet_internal_checkpoint"):
			doomed = append(doomed, p)
		}
		return nil
	})
	for _, p := range doomed {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return err
}

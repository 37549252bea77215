// Package netkit gives tests real network namespaces to send real traffic through: a "pod"
// namespace and a "remote" namespace joined by a veth pair, listeners that report where traffic
// landed (including its pre-NAT destination) and clients that dial as a chosen UID.
//
// Everything here needs root; New skips (or fails under CI=true) through package prereq.
package netkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/prereq"
)

// netnsDir is where `ip netns` bind-mounts the namespaces it names.
const netnsDir = "/var/run/netns"

// vethName is the name of the veth end in both namespaces: link names are per namespace, so the
// same short name never collides, and nothing is ever created in the host namespace.
const vethName = "eth0"

// Addresses only have to be unique within one Net: every Net has namespaces of its own.
var (
	podIPv4    = netip.MustParseAddr("10.200.0.1")
	remoteIPv4 = netip.MustParseAddr("10.200.0.2")
	podIPv6    = netip.MustParseAddr("fd00:200::1")
	remoteIPv6 = netip.MustParseAddr("fd00:200::2")
)

const bits4, bits6 = 24, 64 // prefix lengths of the veth link

// Net is a "pod" namespace and a "remote" namespace joined by a veth pair, each with an IPv4 and an
// IPv6 address on its veth end.
type Net struct {
	Pod, Remote *Namespace
}

// Namespace is a network namespace named with `ip netns`.
type Namespace struct {
	Name       string     // the `ip netns` name
	Path       string     // the bind mount that holds the namespace: /var/run/netns/<Name>
	IPv4, IPv6 netip.Addr // the addresses on its veth end

	ip      string // path of the ip binary
	deleted bool
}

// New creates the two namespaces, the veth pair between them and their addresses, and brings lo
// and the veth up. t.Cleanup deletes both namespaces, whether the test passes, fails or panics.
func New(t testing.TB) *Net {
	t.Helper()
	prereq.Root(t)
	ip := prereq.Binary(t, "ip")

	suffix := fmt.Sprintf("%06x", rand.Uint32N(1<<24))
	n := &Net{
		Pod:    newNamespace(t, ip, "mi-pod-"+suffix, podIPv4, podIPv6),
		Remote: newNamespace(t, ip, "mi-rem-"+suffix, remoteIPv4, remoteIPv6),
	}
	// Created from inside the pod namespace with its peer sent straight to the remote one.
	runIP(t, ip, "-n", n.Pod.Name, "link", "add", vethName, "type", "veth",
		"peer", "name", vethName, "netns", n.Remote.Name)
	for _, ns := range []*Namespace{n.Pod, n.Remote} {
		ns.configure(t)
	}
	// Like a pod, each namespace sends what is not on the link to its peer, so that traffic to
	// any address can leave, be redirected, or be answered.
	for _, pair := range [][2]*Namespace{{n.Pod, n.Remote}, {n.Remote, n.Pod}} {
		runIP(t, ip, "-n", pair[0].Name, "route", "add", "default", "via", pair[1].IPv4.String())
		runIP(t, ip, "-n", pair[0].Name, "-6", "route", "add", "default", "via", pair[1].IPv6.String())
	}
	for _, ns := range []*Namespace{n.Pod, n.Remote} {
		if err := ns.Do(waitReady); err != nil {
			t.Fatalf("netkit: namespace %s: %v", ns.Name, err)
		}
	}
	return n
}

// newNamespace adds the namespace and registers its removal before anything else can fail.
func newNamespace(t testing.TB, ip, name string, v4, v6 netip.Addr) *Namespace {
	t.Helper()
	runIP(t, ip, "netns", "add", name)
	ns := &Namespace{Name: name, Path: filepath.Join(netnsDir, name), IPv4: v4, IPv6: v6, ip: ip}
	t.Cleanup(func() { ns.Delete(t) })
	// Duplicate address detection would keep addresses, link-local ones included, tentative for
	// a second or more; nothing else is on this link, so there is nothing to detect. "default"
	// covers the veth end, which does not exist yet; DAD runs only if "all" also allows it.
	if err := ns.Do(func() error {
		for _, conf := range []string{"all", "default"} {
			if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+conf+"/accept_dad", []byte("0"), 0); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("netkit: namespace %s: disable IPv6 DAD: %v", name, err)
	}
	return ns
}

// configure addresses the veth end and brings it and lo up.
func (ns *Namespace) configure(t testing.TB) {
	t.Helper()
	v4, v6 := netip.PrefixFrom(ns.IPv4, bits4), netip.PrefixFrom(ns.IPv6, bits6)
	runIP(t, ns.ip, "-n", ns.Name, "address", "add", v4.String(), "dev", vethName)
	runIP(t, ns.ip, "-n", ns.Name, "address", "add", v6.String(), "dev", vethName, "nodad")
	runIP(t, ns.ip, "-n", ns.Name, "link", "set", "lo", "up")
	runIP(t, ns.ip, "-n", ns.Name, "link", "set", vethName, "up")
}

// NewBare adds one namespace with only lo, up, as a pod's is before its network is set up. It is
// deleted at cleanup, or earlier with Delete.
func NewBare(t testing.TB) *Namespace {
	t.Helper()
	prereq.Root(t)
	ip := prereq.Binary(t, "ip")
	ns := newNamespace(t, ip, fmt.Sprintf("mi-ns-%06x", rand.Uint32N(1<<24)), netip.Addr{}, netip.Addr{})
	runIP(t, ip, "-n", ns.Name, "link", "set", "lo", "up")
	return ns
}

// Delete removes the namespace now; cleanup then has nothing left to do.
func (ns *Namespace) Delete(t testing.TB) {
	t.Helper()
	if ns.deleted {
		return
	}
	ns.deleted = true
	if out, err := exec.Command(ns.ip, "netns", "delete", ns.Name).CombinedOutput(); err != nil {
		t.Errorf("netkit: ip netns delete %s: %v: %s", ns.Name, err, out)
	}
}

func runIP(t testing.TB, ip string, args ...string) {
	t.Helper()
	if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
		t.Fatalf("netkit: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Run runs a command inside the namespace with `ip netns exec`, fails the test with the command's
// output if it fails, and returns its combined output. Call it from the test's goroutine.
func (ns *Namespace) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	return ns.RunInput(t, "", name, args...)
}

// RunInput is Run with stdin, for commands such as iptables-restore that read rules from it.
func (ns *Namespace) RunInput(t testing.TB, stdin, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(ns.ip, append([]string{"netns", "exec", ns.Name, name}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("netkit: in %s: %s %s: %v\n%s", ns.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// FreePort is a TCP port that nothing listens on, on the host's 127.0.0.1, now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Rules is both families' rules in the namespace as iptables-<backend>-save prints them (backend
// "nft" or "legacy"; "" for the tools' default), without the comment lines, whose timestamps
// change from one read to the next.
func (ns *Namespace) Rules(t testing.TB, backend string) string {
	t.Helper()
	var b strings.Builder
	for _, tool := range []string{"iptables", "ip6tables"} {
		if backend != "" {
			tool += "-" + backend
		}
		for _, line := range strings.Split(ns.Run(t, tool+"-save"), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

package netkit

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"

	"github.com/meshinit/meshinit/test/prereq"
)

// The addresses of a virtual network (VNet): the host's end and the container's.
var (
	VNetHostIPv4      = netip.MustParseAddr("172.30.0.1")
	VNetContainerIPv4 = netip.MustParseAddr("172.30.0.2")
	VNetHostIPv6      = netip.MustParseAddr("fd00:30::1")
	VNetContainerIPv6 = netip.MustParseAddr("fd00:30::2")
	VNetIPv4          = netip.PrefixFrom(VNetHostIPv4, bits4).Masked()
	VNetIPv6          = netip.PrefixFrom(VNetHostIPv6, bits6).Masked()
)

// VNet gives host a virtual network, as Docker gives a host a bridge to its containers: a
// "container" namespace joined to host by a veth pair whose host end is named iface, addressed
// from VNetIPv4 and VNetIPv6, with its default routes through the host, which forwards. It returns
// the container's namespace, deleted at cleanup.
func VNet(t testing.TB, host *Namespace, iface string) *Namespace {
	t.Helper()
	prereq.Root(t)
	ip := prereq.Binary(t, "ip")
	c := newNamespace(t, ip, fmt.Sprintf("mi-ctr-%06x", rand.Uint32N(1<<24)), VNetContainerIPv4, VNetContainerIPv6)
	runIP(t, ip, "-n", host.Name, "link", "add", iface, "type", "veth", "peer", "name", vethName, "netns", c.Name)
	runIP(t, ip, "-n", host.Name, "address", "add", netip.PrefixFrom(VNetHostIPv4, bits4).String(), "dev", iface)
	runIP(t, ip, "-n", host.Name, "address", "add", netip.PrefixFrom(VNetHostIPv6, bits6).String(), "dev", iface, "nodad")
	runIP(t, ip, "-n", host.Name, "link", "set", iface, "up")
	c.configure(t)
	runIP(t, ip, "-n", c.Name, "route", "add", "default", "via", VNetHostIPv4.String())
	runIP(t, ip, "-n", c.Name, "-6", "route", "add", "default", "via", VNetHostIPv6.String())
	if err := host.Do(func() error {
		for _, sysctl := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(sysctl, []byte("1"), 0); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("netkit: namespace %s: forwarding: %v", host.Name, err)
	}
	if err := c.Do(waitReady); err != nil {
		t.Fatalf("netkit: namespace %s: %v", c.Name, err)
	}
	return c
}

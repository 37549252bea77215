package plugin

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// notOwnNetNS refuses a CNI_NETNS that is kuma-cni's own network namespace, the node's: rules
// there would send the node's own traffic to a sidecar port. No runtime asks that of a chained
// plugin (pods on the host's network get no CNI call), but a misbehaving one, a hand-written
// call or a path that names the host's namespace must not cost the node its network. Two paths
// name the same namespace when they are the same nsfs inode.
func (p *Plugin) notOwnNetNS(c *call, netns string) error {
	own := p.OwnNetNS
	if own == "" {
		own = "/proc/self/ns/net"
	}
	var o, t unix.Stat_t
	if err := unix.Stat(own, &o); err != nil {
		return fmt.Errorf("kuma-cni: pod %s/%s: reading kuma-cni's own network namespace %s: %w", c.namespace, c.name, own, err)
	}
	if err := unix.Stat(netns, &t); err != nil {
		return fmt.Errorf("kuma-cni: pod %s/%s: CNI_NETNS %s: %w", c.namespace, c.name, netns, err)
	}
	if o.Dev == t.Dev && o.Ino == t.Ino {
		return fmt.Errorf("kuma-cni: pod %s/%s: CNI_NETNS %q is kuma-cni's own network namespace (the node's), where rules would "+
			"redirect the node's own traffic; nothing was installed; accepted: the pod's own network namespace", c.namespace, c.name, netns)
	}
	return nil
}

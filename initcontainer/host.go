package initcontainer

import (
	"bufio"
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/internal/readfile"
)

// ParseResolvConf returns the distinct nameserver addresses of a resolv.conf, zones removed
// (rules cannot match them). A nameserver line that is not an address is an error: DNS to that
// server could not be redirected, and silently skipping it would let DNS bypass the proxy.
func ParseResolvConf(data []byte) ([]netip.Addr, error) {
	var servers []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "nameserver" {
			continue
		}
		if len(fields) < 2 {
			return nil, fmt.Errorf("resolv.conf line %d: nameserver without an address", n)
		}
		addr, err := netip.ParseAddr(fields[1])
		if err != nil {
			return nil, fmt.Errorf("resolv.conf line %d: nameserver %q is not an IP address", n, fields[1])
		}
		if addr = addr.WithZone("").Unmap(); !slices.Contains(servers, addr) {
			servers = append(servers, addr)
		}
	}
	return servers, sc.Err()
}

// LookupProxyUID resolves kumaDPUser, a user name or a UID, as kumactl's --kuma-dp-user does. A
// UID needs no account; a name must exist in the user database.
func LookupProxyUID(name string) (uint32, error) {
	if uid, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(uid), nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, &api.FieldError{Value: name, Problem: "is not a user on this host",
			Accepted: "an existing user name, such as one made with useradd -u 5678 -U kuma-dp, or a UID"}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("user %q has UID %q, which is not a number", name, u.Uid)
	}
	return uint32(uid), nil
}

// ReadHost gathers the facts the rules need: the proxy's UID and, when DNS is redirected to
// specific nameservers, those of redirect.dns.resolvConfigPath. In CNI mode the rules are installed
// from the node, whose users are not the pod's: kumaDPUser must be a UID, and is not looked up.
// Errors name the document's field.
func ReadHost(cfg *api.TransparentProxyConfig) (Host, error) {
	var errs api.FieldErrors
	var host Host
	uid, err := strconv.ParseUint(cfg.KumaDPUser, 10, 32)
	switch {
	case err == nil:
		host.ProxyUID = uint32(uid)
	case cfg.CNIMode:
		errs.Add(cfg.Path(&cfg.KumaDPUser), &api.FieldError{Value: cfg.KumaDPUser,
			Problem: "is not a UID, and in CNI mode (" + cfg.Path(&cfg.CNIMode) + ") users are not looked up", Accepted: "a UID, such as 5678"})
	default:
		host.ProxyUID, err = LookupProxyUID(cfg.KumaDPUser)
		errs.Add(cfg.Path(&cfg.KumaDPUser), err)
	}
	if dns := cfg.Redirect.DNS; dns.Enabled && !dns.CaptureAll {
		field := cfg.Path(&cfg.Redirect.DNS.ResolvConfigPath)
		accepted := "a resolv.conf whose nameservers' DNS is redirected, or " + cfg.Path(&cfg.Redirect.DNS.CaptureAll) + ": true"
		data, err := readfile.Regular(dns.ResolvConfigPath, maxResolvConf)
		if err != nil {
			errs.Add(field, &api.FieldError{Value: dns.ResolvConfigPath, Problem: "cannot be read: " + err.Error(), Accepted: accepted})
		} else if host.Nameservers, err = ParseResolvConf(data); err != nil {
			errs.Add(field, &api.FieldError{Value: dns.ResolvConfigPath, Problem: "is not usable: " + err.Error(), Accepted: accepted})
		}
	}
	return host, errs.Err()
}

// maxResolvConf bounds what is read of a resolv.conf: glibc reads at most three nameservers, and
// a file this long is not one.
const maxResolvConf = 1 << 20

// ipv6Available reports whether the calling thread's network namespace has IPv6 at all; without
// it (ipv6.disable=1) there is no IPv6 traffic to redirect.
func ipv6Available() bool {
	_, err := os.Stat("/proc/thread-self/net/if_inet6")
	return err == nil
}

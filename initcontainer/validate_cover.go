package initcontainer

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/initcontainer/origdst"
)

// exemptionWait is how long the proxy's own probe waits to see whether it is captured: a captured
// connection is handed to the listener on lo within the connect call, microseconds; one that is
// not goes out to a documentation address that never answers, so every validation as the proxy
// waits this long per family (BenchmarkValidate), at every pod's start.
const exemptionWait = 25 * time.Millisecond

// covered fails a validation that left a path of a family unproven. Each family the configuration
// redirects must have its outbound path checked (when outbound redirection is on) and its inbound
// path (when both are on: only the proxy's own connections, which the outbound rules hairpin, can
// reach the inbound rules from inside the pod), whichever user runs it; a family the host has no
// address of is no traffic to prove. A run that checked nothing fails too: all skipped is not a
// pass.
func covered(cfg *api.TransparentProxyConfig, checks []Check) error {
	var errs []error
	proven := 0
	for _, c := range checks {
		if c.Skipped == "" && c.Err == nil {
			proven++
		}
	}
	for _, f := range Families(cfg) {
		var required []string
		if cfg.Redirect.Outbound.Enabled {
			required = append(required, "outbound")
			if cfg.Redirect.Inbound.Enabled {
				required = append(required, "inbound")
			}
		}
		for _, path := range required {
			for _, c := range checks {
				if c.Family != f || (c.Path != path && c.Path != "all") || c.Skipped == "" || c.Path == "all" && c.Skipped == noIPv6 {
					continue
				}
				errs = append(errs, fmt.Errorf("%s %s: not checked (%s), and a validation must check it: run it as the proxy's user, "+
					"as Kuma's injector does, or as root", f, path, c.Skipped))
			}
		}
	}
	if proven == 0 {
		var why []string
		for _, c := range checks {
			why = append(why, c.String())
		}
		errs = append(errs, fmt.Errorf("nothing was checked (%s)", strings.Join(why, "; ")))
	}
	return errors.Join(errs...)
}

// noIPv6 is why a host without IPv6 has nothing to prove for it.
const noIPv6 = "this host has no IPv6"

// outboundAsProxy is the outbound check of a validation run as the proxy's user, Kuma's layout of
// the validation container: the proxy's own connections out must go out, not come back to the
// outbound port, where the sidecar would take its own traffic in a loop. Its own capture cannot be
// shown from its user, but its hairpin into the inbound port (inbound) runs through the outbound
// rules.
func (v validator) outboundAsProxy(f Family) Check {
	c := Check{Family: f, Path: "outbound", Exempt: true}
	dst, ok := v.target(f, nil, func(uint16) bool { return false })
	if !ok {
		c.Skipped = "no probe address"
		return c
	}
	c.Sent = dst
	listen := netip.AddrPortFrom(f.Loopback().Addr(), v.cfg.Redirect.Outbound.Port)
	ln, err := net.ListenTCP(network("tcp", listen.Addr()), net.TCPAddrFromAddrPort(listen))
	if err != nil {
		c.Err = fmt.Errorf("listening on %s as the proxy would: %w", listen, err)
		return c
	}
	defer ln.Close()
	d := net.Dialer{Timeout: min(v.deadline, exemptionWait)}
	conn, err := d.Dial(network("tcp", dst.Addr()), dst.String())
	if err != nil {
		return c // not captured: it went out, to nowhere
	}
	conn.Close()
	// Connected: to the listener, if captured, which holds it already.
	_ = ln.SetDeadline(time.Now().Add(exemptionWait))
	if accepted, err := ln.AcceptTCP(); err == nil {
		defer accepted.Close()
		if orig, err := origdst.Of(accepted); err == nil && orig == dst {
			c.Err = fmt.Errorf("the proxy's own connection to %s came back to port %d: the rules do not exempt UID %d, and the sidecar would loop",
				dst, listen.Port(), v.host.ProxyUID)
		}
	}
	return c
}

// passthroughTarget is where the inbound check connects when the pod has no address of the family
// (a dual-stack configuration on a single-stack cluster): the passthrough address on lo, from
// localhost, as Kuma's validator connects. Its source must be localhost, since the rules let the
// passthrough address's own traffic through.
func passthroughTarget(f Family) (local, remote netip.Addr) {
	return f.Loopback().Addr(), f.passthroughSource().Addr()
}

package api

import (
	"fmt"
	"strconv"
)

// The effective transparent-proxy configuration document's header.
const (
	ConfigAPIVersion = "meshinit.io/v1alpha1"
	ConfigKind       = "TransparentProxyConfig"
)

// Defaults of the document that are not also Kubernetes defaults. They follow
// `kumactl install transparent-proxy`, so that flags and the document agree.
const (
	DefaultKumaDPUser = "5678"
	DefaultWait       = 5
	DefaultMaxRetries = 4
)

// TransparentProxyConfig is the effective transparent-proxy configuration: what the webhook writes
// into traffic.kuma.io/transparent-proxy-config, what kuma-init --config and the CNI plugin read,
// and what `meshinit install transparent-proxy` flags spell another way. Parse it with
// ParseTransparentProxyConfig and write it with Marshal; both go through Validate.
type TransparentProxyConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// KumaDPUser is the proxy's user, by name or UID. Its traffic is never redirected.
	KumaDPUser   string       `json:"kumaDPUser"`
	IPFamilyMode IPFamilyMode `json:"ipFamilyMode"`
	Redirect     Redirect     `json:"redirect"`
	// ReachableServices scopes the proxy's configuration; it does not change the rules.
	ReachableServices  Services `json:"reachableServices"`
	DropInvalidPackets bool     `json:"dropInvalidPackets"`
	IPTablesLogs       bool     `json:"iptablesLogs"`
	// StoreFirewalld also persists the rules in firewalld's direct.xml (universal mode).
	StoreFirewalld bool `json:"storeFirewalld"`
	Verbose        bool `json:"verbose"`
	// Wait is how many seconds iptables waits for the xtables lock.
	Wait uint `json:"wait"`
	// MaxRetries bounds the attempts after a failed apply.
	MaxRetries uint `json:"maxRetries"`
}

// Redirect says which traffic goes to the sidecar.
type Redirect struct {
	Inbound  InboundRedirect  `json:"inbound"`
	Outbound OutboundRedirect `json:"outbound"`
	DNS      DNSRedirect      `json:"dns"`
}

// InboundRedirect sends traffic arriving at the pod to the sidecar's inbound listener.
type InboundRedirect struct {
	// Enabled is false for gateways.
	Enabled      bool       `json:"enabled"`
	Port         uint16     `json:"port"`
	ExcludePorts PortRanges `json:"excludePorts"`
	// ExcludeIPs are source addresses.
	ExcludeIPs CIDRs `json:"excludeIPs"`
}

// OutboundRedirect sends traffic leaving the pod to the sidecar's outbound listener.
type OutboundRedirect struct {
	Port         uint16     `json:"port"`
	ExcludePorts PortRanges `json:"excludePorts"`
	// ExcludeIPs are destination addresses.
	ExcludeIPs          CIDRs            `json:"excludeIPs"`
	ExcludePortsForUIDs PortsForUIDsList `json:"excludePortsForUIDs"`
}

// DNSRedirect sends DNS queries to the sidecar's DNS server.
type DNSRedirect struct {
	Enabled bool   `json:"enabled"`
	Port    uint16 `json:"port"`
	// CaptureAll redirects DNS to any address, not only to the nameservers of resolv.conf.
	CaptureAll bool `json:"captureAll"`
	// ConntrackZoneSplit keeps the app's and the proxy's DNS flows in separate conntrack zones, so
	// that replies are not mistaken for each other.
	ConntrackZoneSplit bool `json:"conntrackZoneSplit"`
}

// DefaultTransparentProxyConfig returns the document's defaults: those of
// `kumactl install transparent-proxy`.
func DefaultTransparentProxyConfig() *TransparentProxyConfig {
	return &TransparentProxyConfig{
		APIVersion:   ConfigAPIVersion,
		Kind:         ConfigKind,
		KumaDPUser:   DefaultKumaDPUser,
		IPFamilyMode: IPFamilyDualStack,
		Redirect: Redirect{
			Inbound: InboundRedirect{Enabled: true, Port: DefaultRedirectPortInbound,
				ExcludePorts: PortRanges{}, ExcludeIPs: CIDRs{}},
			Outbound: OutboundRedirect{Port: DefaultRedirectPortOutbound,
				ExcludePorts: PortRanges{}, ExcludeIPs: CIDRs{}, ExcludePortsForUIDs: PortsForUIDsList{}},
			DNS: DNSRedirect{Port: DefaultBuiltinDNSPort, ConntrackZoneSplit: true},
		},
		ReachableServices: Services{},
		Wait:              DefaultWait,
		MaxRetries:        DefaultMaxRetries,
	}
}

// FormUser is the accepted form of kumaDPUser.
const FormUser = "a user name such as kuma-dp, or a UID 0-4294967294"

// Validate reports every problem of the configuration at once, each naming its document path.
func (c *TransparentProxyConfig) Validate() error {
	var errs FieldErrors
	if c.APIVersion != ConfigAPIVersion {
		errs.Add("apiVersion", invalid(c.APIVersion, "", "is not a supported version", ConfigAPIVersion))
	}
	if c.Kind != ConfigKind {
		errs.Add("kind", invalid(c.Kind, "", "is not this document's kind", ConfigKind))
	}
	if isDigits(c.KumaDPUser) {
		if n, err := strconv.ParseUint(c.KumaDPUser, 10, 64); err != nil || n > maxUID {
			errs.Add(c.Path(&c.KumaDPUser), invalid(c.KumaDPUser, "", "is out of range for a UID", FormUser))
		}
	} else if !isUserName(c.KumaDPUser) {
		errs.Add(c.Path(&c.KumaDPUser), invalid(c.KumaDPUser, "", "is not a user name or UID", FormUser))
	}
	if _, err := ParseIPFamilyMode(string(c.IPFamilyMode)); err != nil {
		errs.Add(c.Path(&c.IPFamilyMode), err)
	}
	c.validatePorts(&errs)
	checkRanges(&errs, c.Path(&c.Redirect.Inbound.ExcludePorts), c.Redirect.Inbound.ExcludePorts)
	checkRanges(&errs, c.Path(&c.Redirect.Outbound.ExcludePorts), c.Redirect.Outbound.ExcludePorts)
	checkCIDRs(&errs, c.Path(&c.Redirect.Inbound.ExcludeIPs), c.Redirect.Inbound.ExcludeIPs)
	checkCIDRs(&errs, c.Path(&c.Redirect.Outbound.ExcludeIPs), c.Redirect.Outbound.ExcludeIPs)
	for i, e := range c.Redirect.Outbound.ExcludePortsForUIDs {
		field := fmt.Sprintf("%s[%d]", c.Path(&c.Redirect.Outbound.ExcludePortsForUIDs), i)
		errs.Add(field, roundTrip(e.String(), ParsePortsForUIDs))
	}
	if c.Redirect.DNS.CaptureAll && !c.Redirect.DNS.Enabled {
		enabled := c.Path(&c.Redirect.DNS.Enabled)
		errs.Add(c.Path(&c.Redirect.DNS.CaptureAll), &FieldError{Value: "true",
			Problem: "needs " + enabled, Accepted: "false, or " + enabled + ": true"})
	}
	for i, s := range c.ReachableServices {
		if problem := serviceProblem(s); problem != "" {
			errs.Add(fmt.Sprintf("%s[%d]", c.Path(&c.ReachableServices), i), invalid(s, "", problem, FormServices))
		}
	}
	return errs.Err()
}

// validatePorts checks that each redirect port in use is a port, and that no two listeners of the
// sidecar share one.
func (c *TransparentProxyConfig) validatePorts(errs *FieldErrors) {
	type use struct {
		field string
		port  uint16
	}
	uses := []use{{c.Path(&c.Redirect.Outbound.Port), c.Redirect.Outbound.Port}}
	if c.Redirect.Inbound.Enabled {
		uses = append(uses, use{c.Path(&c.Redirect.Inbound.Port), c.Redirect.Inbound.Port})
	}
	if c.Redirect.DNS.Enabled {
		uses = append(uses, use{c.Path(&c.Redirect.DNS.Port), c.Redirect.DNS.Port})
	}
	for i, u := range uses {
		if u.port == 0 {
			errs.Add(u.field, invalid("0", "", "is out of range 1-65535", FormPort))
			continue
		}
		for _, other := range uses[:i] {
			if other.port == u.port {
				errs.Add(u.field, invalid(strconv.Itoa(int(u.port)), "", "is also "+other.field, "a port no other redirect uses"))
			}
		}
	}
}

// checkRanges catches ranges built in code rather than parsed: zero or reversed bounds.
func checkRanges(errs *FieldErrors, field string, ranges PortRanges) {
	for i, r := range ranges {
		if r.First == 0 || r.First > r.Last {
			errs.Add(fmt.Sprintf("%s[%d]", field, i), invalid(r.String(), "", "is not a port or an ascending range", FormPortRanges))
		}
	}
}

func checkCIDRs(errs *FieldErrors, field string, cidrs CIDRs) {
	for i, p := range cidrs {
		if !p.IsValid() {
			errs.Add(fmt.Sprintf("%s[%d]", field, i), invalid(p.String(), "", "is not a CIDR", FormCIDRs))
		}
	}
}

// roundTrip checks a value built in code by parsing its text form.
func roundTrip[T any](text string, parse func(string) (T, error)) error {
	_, err := parse(text)
	return err
}

// Warnings lists valid but suspicious settings, each naming its document path: overlapping
// exclusions, host bits in CIDRs, and exclusions of a family the mode does not redirect.
func (c *TransparentProxyConfig) Warnings() []string {
	var out []string
	add := func(field string, warnings []string) {
		for _, w := range warnings {
			out = append(out, field+": "+w)
		}
	}
	add(c.Path(&c.Redirect.Inbound.ExcludePorts), c.Redirect.Inbound.ExcludePorts.Warnings())
	add(c.Path(&c.Redirect.Outbound.ExcludePorts), c.Redirect.Outbound.ExcludePorts.Warnings())
	for _, x := range []struct {
		field string
		cidrs CIDRs
	}{{c.Path(&c.Redirect.Inbound.ExcludeIPs), c.Redirect.Inbound.ExcludeIPs}, {c.Path(&c.Redirect.Outbound.ExcludeIPs), c.Redirect.Outbound.ExcludeIPs}} {
		add(x.field, x.cidrs.Warnings())
		if !c.IPFamilyMode.IPv6() && len(x.cidrs.IPv6()) > 0 {
			add(x.field, []string{fmt.Sprintf("IPv6 entries have no effect in %s mode", c.IPFamilyMode)})
		}
		if !c.IPFamilyMode.IPv4() && len(x.cidrs.IPv4()) > 0 {
			add(x.field, []string{fmt.Sprintf("IPv4 entries have no effect in %s mode", c.IPFamilyMode)})
		}
	}
	return out
}

package api

import (
	"fmt"
	"strconv"
	"time"
)

// ConfigKind names the document in messages and help.
const ConfigKind = "transparent-proxy configuration"

// Defaults of the document that are not also Kubernetes defaults. They follow
// `kumactl install transparent-proxy`, so that flags and the document agree.
const (
	DefaultKumaDPUser          = "5678"
	DefaultWait                = 5
	DefaultMaxRetries          = 4
	DefaultSleepBetweenRetries = 2 * time.Second
	DefaultResolvConf          = "/etc/resolv.conf"
	// DefaultLogLevel is the kernel log level of the LOG rules: debug.
	DefaultLogLevel = 7
)

// TransparentProxyConfig is the transparent-proxy configuration in Kuma's own document format
// (Kuma's pkg/transparentproxy/config: its field names and value types), so that kuma-dp, kumactl
// and Kuma's CNI read what meshinit writes, and meshinit reads what Kuma's injector wrote. It is
// what the webhook writes into traffic.kuma.io/transparent-proxy-config, what kuma-init --config,
// the CNI plugin and the validator read, and what `meshinit install transparent-proxy` flags spell
// another way. What Kuma's format cannot say lives under meshinit, which Kuma's readers ignore.
// Parse it with ParseTransparentProxyConfig and write it with Marshal; both go through Validate.
type TransparentProxyConfig struct {
	// KumaDPUser is the proxy's user, by name or UID. Its traffic is never redirected.
	KumaDPUser string `json:"kumaDPUser"`
	// IPFamilyMode is dualstack or ipv4, as Kuma reads it; meshinit.ipFamilyMode narrows it.
	IPFamilyMode       IPFamilyMode `json:"ipFamilyMode"`
	Redirect           Redirect     `json:"redirect"`
	DropInvalidPackets bool         `json:"dropInvalidPackets,omitempty"`
	Log                Log          `json:"log"`
	Comments           Comments     `json:"comments,omitzero"`
	// Wait is how many seconds iptables waits for the xtables lock; WaitInterval, in microseconds,
	// how often it tries.
	Wait         uint  `json:"wait"`
	WaitInterval uint  `json:"waitInterval"`
	Retry        Retry `json:"retry"`
	// CNIMode means the rules are installed by a CNI plugin on the node, where the proxy's user
	// is a UID that the node need not know.
	CNIMode bool `json:"cniMode,omitempty"`
	// StoreFirewalld also persists the rules in firewalld's direct.xml (universal mode).
	StoreFirewalld bool `json:"storeFirewalld,omitempty"`
	Verbose        bool `json:"verbose,omitempty"`
	// DryRun prints the rules instead of installing them.
	DryRun              bool        `json:"dryRun,omitempty"`
	IPTablesExecutables Executables `json:"iptablesExecutables,omitempty"`
	// EBPF is Kuma's eBPF mode (before 3.0), which meshinit does not implement: it may only be off.
	EBPF EBPF `json:"ebpf,omitzero"`
	// Meshinit holds what only meshinit reads.
	Meshinit Extensions `json:"meshinit,omitzero"`
}

// Redirect says which traffic goes to the sidecar.
type Redirect struct {
	Inbound  Flow        `json:"inbound"`
	Outbound Flow        `json:"outbound"`
	DNS      DNSRedirect `json:"dns"`
	VNet     VNet        `json:"vnet,omitzero"`
}

// Flow is one direction of traffic: inbound (arriving at the pod) or outbound (leaving it).
type Flow struct {
	// Enabled is false for gateways' inbound traffic.
	Enabled bool   `json:"enabled"`
	Port    uint16 `json:"port"`
	// IncludePorts, when not empty, are the only ports redirected.
	IncludePorts Ports `json:"includePorts,omitempty"`
	// ExcludePorts are single ports; meshinit.redirect.<flow>.excludePortRanges adds ranges.
	ExcludePorts Ports `json:"excludePorts,omitempty"`
	// ExcludePortsForUIDs exempts the traffic of some users (outbound only: inbound traffic has
	// no local user).
	ExcludePortsForUIDs PortsForUIDsList `json:"excludePortsForUIDs,omitempty"`
	// ExcludePortsForIPs are source addresses inbound and destinations outbound.
	ExcludePortsForIPs CIDRs `json:"excludePortsForIPs,omitempty"`
	// InsertRedirectInsteadOfAppend puts the jump to our chain first in PREROUTING or OUTPUT,
	// ahead of rules that others added.
	InsertRedirectInsteadOfAppend bool `json:"insertRedirectInsteadOfAppend,omitempty"`
}

// DNSRedirect sends DNS queries to the sidecar's DNS server.
type DNSRedirect struct {
	Enabled bool   `json:"enabled"`
	Port    uint16 `json:"port"`
	// CaptureAll redirects DNS to any address, not only to the nameservers of resolv.conf.
	CaptureAll bool `json:"captureAll"`
	// SkipConntrackZoneSplit keeps the app's and the proxy's DNS flows in one conntrack zone;
	// split, replies are not mistaken for each other.
	SkipConntrackZoneSplit bool `json:"skipConntrackZoneSplit"`
	// ResolvConfigPath is the resolv.conf whose nameservers' DNS is redirected.
	ResolvConfigPath string `json:"resolvConfigPath"`
}

// VNet lists the virtual networks (Docker's bridges, say) whose traffic is the host's own, in
// universal mode.
type VNet struct {
	// Networks are "interface:CIDR" entries; an interface name ending in + is a prefix.
	Networks VNetworks `json:"networks,omitempty"`
}

// Log logs redirected packets to the kernel log.
type Log struct {
	Enabled bool `json:"enabled"`
	// Level is the kernel log level, 0 (emerg) to 7 (debug).
	Level LogLevel `json:"level"`
}

// Comments says whether rules carry comments; they mark the rules as ours.
type Comments struct {
	Disabled bool `json:"disabled"`
}

// Retry bounds the attempts after a failed apply.
type Retry struct {
	MaxRetries          uint     `json:"maxRetries"`
	SleepBetweenRetries Duration `json:"sleepBetweenRetries"`
}

// EBPF is Kuma's eBPF mode (2.9-2.14). Its fields are known, so that Kuma's documents read without
// a warning; only its switch matters, and it may only be off.
type EBPF struct {
	Enabled              bool   `json:"enabled"`
	InstanceIP           string `json:"instanceIP,omitempty"`
	InstanceIPEnvVarName string `json:"instanceIPEnvVarName,omitempty"`
	BPFFSPath            string `json:"bpffsPath,omitempty"`
	CgroupPath           string `json:"cgroupPath,omitempty"`
	ProgramsSourcePath   string `json:"programsSourcePath,omitempty"`
	TCAttachIface        string `json:"tcAttachIface,omitempty"`
}

// Extensions are meshinit's own settings, under meshinit: Kuma's readers ignore them.
type Extensions struct {
	// IPFamilyMode is ipv6 for pods whose IPv6 traffic alone is redirected; Kuma's ipFamilyMode,
	// which has no such mode, then says dualstack.
	IPFamilyMode IPFamilyMode       `json:"ipFamilyMode,omitempty"`
	Redirect     ExtensionRedirects `json:"redirect,omitzero"`
	// ReachableServices scopes the proxy's configuration; it does not change the rules.
	ReachableServices Services `json:"reachableServices,omitempty"`
	// Backend installs the rules through iptables or nftables; empty is auto.
	Backend Backend `json:"backend,omitempty"`
}

// ExtensionRedirects are meshinit's additions to each flow.
type ExtensionRedirects struct {
	Inbound  ExtensionFlow `json:"inbound,omitzero"`
	Outbound ExtensionFlow `json:"outbound,omitzero"`
}

// ExtensionFlow adds to a flow what Kuma's cannot hold.
type ExtensionFlow struct {
	// ExcludePortRanges are ranges of ports not redirected, beside the flow's excludePorts.
	ExcludePortRanges PortRanges `json:"excludePortRanges,omitempty"`
}

// DefaultTransparentProxyConfig returns the document's defaults: those of
// `kumactl install transparent-proxy`.
func DefaultTransparentProxyConfig() *TransparentProxyConfig {
	return &TransparentProxyConfig{
		KumaDPUser:   DefaultKumaDPUser,
		IPFamilyMode: IPFamilyDualStack,
		Redirect: Redirect{
			Inbound:  Flow{Enabled: true, Port: DefaultRedirectPortInbound},
			Outbound: Flow{Enabled: true, Port: DefaultRedirectPortOutbound},
			DNS:      DNSRedirect{Port: DefaultBuiltinDNSPort, ResolvConfigPath: DefaultResolvConf},
		},
		Log:   Log{Level: DefaultLogLevel},
		Wait:  DefaultWait,
		Retry: Retry{MaxRetries: DefaultMaxRetries, SleepBetweenRetries: Duration(DefaultSleepBetweenRetries)},
	}
}

// Family is the effective IP family mode: meshinit's where it narrows Kuma's.
func (c *TransparentProxyConfig) Family() IPFamilyMode {
	if c.Meshinit.IPFamilyMode != "" {
		return c.Meshinit.IPFamilyMode
	}
	return c.IPFamilyMode
}

// SetFamily sets the mode, in Kuma's field where Kuma can say it.
func (c *TransparentProxyConfig) SetFamily(m IPFamilyMode) {
	c.IPFamilyMode, c.Meshinit.IPFamilyMode = m, ""
	if m == IPFamilyIPv6 {
		c.IPFamilyMode, c.Meshinit.IPFamilyMode = IPFamilyDualStack, m
	}
}

// InboundExcluded is every inbound port not redirected: Kuma's single ports and meshinit's ranges.
func (c *TransparentProxyConfig) InboundExcluded() PortRanges {
	return joinPorts(c.Redirect.Inbound.ExcludePorts, c.Meshinit.Redirect.Inbound.ExcludePortRanges)
}

// OutboundExcluded is every outbound port not redirected.
func (c *TransparentProxyConfig) OutboundExcluded() PortRanges {
	return joinPorts(c.Redirect.Outbound.ExcludePorts, c.Meshinit.Redirect.Outbound.ExcludePortRanges)
}

// SetInboundExcluded puts single ports in Kuma's field and ranges in meshinit's.
func (c *TransparentProxyConfig) SetInboundExcluded(p PortRanges) {
	c.Redirect.Inbound.ExcludePorts, c.Meshinit.Redirect.Inbound.ExcludePortRanges = splitPorts(p)
}

// SetOutboundExcluded puts single ports in Kuma's field and ranges in meshinit's.
func (c *TransparentProxyConfig) SetOutboundExcluded(p PortRanges) {
	c.Redirect.Outbound.ExcludePorts, c.Meshinit.Redirect.Outbound.ExcludePortRanges = splitPorts(p)
}

func joinPorts(singles Ports, ranges PortRanges) PortRanges {
	if len(singles) == 0 && len(ranges) == 0 {
		return nil
	}
	out := make(PortRanges, 0, len(singles)+len(ranges))
	for _, p := range singles {
		out = append(out, PortRange{First: p, Last: p})
	}
	return append(out, ranges...)
}

func splitPorts(p PortRanges) (Ports, PortRanges) {
	var singles Ports
	var ranges PortRanges
	for _, r := range p {
		if r.First == r.Last {
			singles = append(singles, r.First)
		} else {
			ranges = append(ranges, r)
		}
	}
	return singles, ranges
}

// FormUser is the accepted form of kumaDPUser.
const FormUser = "a user name such as kuma-dp, or a UID 0-4294967294"

// Validate reports every problem of the configuration at once, each naming its document path.
func (c *TransparentProxyConfig) Validate() error {
	var errs FieldErrors
	if isDigits(c.KumaDPUser) {
		if n, err := strconv.ParseUint(c.KumaDPUser, 10, 64); err != nil || n > maxUID {
			errs.Add(c.Path(&c.KumaDPUser), invalid(c.KumaDPUser, "", "is out of range for a UID", FormUser))
		}
	} else if !isUserName(c.KumaDPUser) {
		errs.Add(c.Path(&c.KumaDPUser), invalid(c.KumaDPUser, "", "is not a user name or UID", FormUser))
	}
	switch c.IPFamilyMode {
	case IPFamilyDualStack, IPFamilyIPv4:
	default:
		errs.Add(c.Path(&c.IPFamilyMode), invalid(string(c.IPFamilyMode), "", "is not an IP family mode Kuma reads",
			FormKumaIPFamilyMode+"; ipv6 is meshinit.ipFamilyMode"))
	}
	switch ext := c.Meshinit.IPFamilyMode; {
	case ext == "":
	case ext != IPFamilyIPv6:
		errs.Add(c.Path(&c.Meshinit.IPFamilyMode), invalid(string(ext), "", "is not meshinit's narrower mode", "ipv6, or nothing"))
	case c.IPFamilyMode != IPFamilyDualStack:
		errs.Add(c.Path(&c.Meshinit.IPFamilyMode), invalid(string(ext), "", "narrows "+string(c.IPFamilyMode)+", not dualstack",
			"ipv6 with "+c.Path(&c.IPFamilyMode)+": dualstack"))
	}
	c.validatePorts(&errs)
	for _, f := range []*Flow{&c.Redirect.Inbound, &c.Redirect.Outbound} {
		checkRanges(&errs, c.Path(&f.ExcludePorts), joinPorts(f.ExcludePorts, nil))
		checkRanges(&errs, c.Path(&f.IncludePorts), joinPorts(f.IncludePorts, nil))
		checkCIDRs(&errs, c.Path(&f.ExcludePortsForIPs), f.ExcludePortsForIPs)
	}
	for _, ext := range []*ExtensionFlow{&c.Meshinit.Redirect.Inbound, &c.Meshinit.Redirect.Outbound} {
		checkRanges(&errs, c.Path(&ext.ExcludePortRanges), ext.ExcludePortRanges)
	}
	if uids := c.Redirect.Inbound.ExcludePortsForUIDs; len(uids) > 0 {
		errs.Add(c.Path(&c.Redirect.Inbound.ExcludePortsForUIDs), &FieldError{Value: uids.String(),
			Problem: "cannot apply: inbound traffic has no local user to match", Accepted: "an empty list"})
	}
	for i, e := range c.Redirect.Outbound.ExcludePortsForUIDs {
		field := fmt.Sprintf("%s[%d]", c.Path(&c.Redirect.Outbound.ExcludePortsForUIDs), i)
		errs.Add(field, roundTrip(e.String(), ParsePortsForUIDs))
	}
	if c.Redirect.DNS.CaptureAll && !c.Redirect.DNS.Enabled {
		enabled := c.Path(&c.Redirect.DNS.Enabled)
		errs.Add(c.Path(&c.Redirect.DNS.CaptureAll), &FieldError{Value: "true",
			Problem: "needs " + enabled, Accepted: "false, or " + enabled + ": true"})
	}
	if c.Log.Level > 7 {
		errs.Add(c.Path(&c.Log.Level), invalid(c.Log.Level.String(), "", "is not a kernel log level", FormLogLevel))
	}
	for i, n := range c.Redirect.VNet.Networks {
		errs.Add(fmt.Sprintf("%s[%d]", c.Path(&c.Redirect.VNet.Networks), i), roundTrip(n.String(), ParseVNetwork))
	}
	c.IPTablesExecutables.validate(c.Path(&c.IPTablesExecutables), &errs)
	c.validateBackend(&errs)
	if c.EBPF.Enabled {
		errs.Add(c.Path(&c.EBPF.Enabled), &FieldError{Value: "true",
			Problem: "asks for Kuma's eBPF mode, which meshinit does not implement", Accepted: "false: iptables rules"})
	}
	for i, s := range c.Meshinit.ReachableServices {
		if problem := serviceProblem(s); problem != "" {
			errs.Add(fmt.Sprintf("%s[%d]", c.Path(&c.Meshinit.ReachableServices), i), invalid(s, "", problem, FormServices))
		}
	}
	return errs.Err()
}

// validatePorts checks that each redirect port is a port, and that no two listeners of the
// sidecar in use share one. Kuma's readers refuse port 0 even where the redirect is off.
func (c *TransparentProxyConfig) validatePorts(errs *FieldErrors) {
	type use struct {
		field string
		port  uint16
		on    bool
	}
	uses := []use{
		{c.Path(&c.Redirect.Outbound.Port), c.Redirect.Outbound.Port, c.Redirect.Outbound.Enabled},
		{c.Path(&c.Redirect.Inbound.Port), c.Redirect.Inbound.Port, c.Redirect.Inbound.Enabled},
		{c.Path(&c.Redirect.DNS.Port), c.Redirect.DNS.Port, c.Redirect.DNS.Enabled},
	}
	for i, u := range uses {
		if u.port == 0 {
			errs.Add(u.field, invalid("0", "", "is out of range 1-65535", FormPort))
			continue
		}
		for _, other := range uses[:i] {
			if u.on && other.on && other.port == u.port {
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
	add(c.Path(&c.Redirect.Inbound.ExcludePorts), c.InboundExcluded().Warnings())
	add(c.Path(&c.Redirect.Outbound.ExcludePorts), c.OutboundExcluded().Warnings())
	for _, f := range []struct {
		flow     *Flow
		excluded PortRanges
	}{{&c.Redirect.Inbound, c.InboundExcluded()}, {&c.Redirect.Outbound, c.OutboundExcluded()}} {
		if len(f.flow.IncludePorts) > 0 && len(f.excluded) > 0 {
			add(c.Path(&f.flow.ExcludePorts), []string{"have no effect: " + c.Path(&f.flow.IncludePorts) +
				" names the only ports redirected, as in Kuma"})
		}
	}
	out = append(out, c.backendWarnings()...)
	mode := c.Family()
	for _, f := range []*Flow{&c.Redirect.Inbound, &c.Redirect.Outbound} {
		field := c.Path(&f.ExcludePortsForIPs)
		add(field, f.ExcludePortsForIPs.Warnings())
		if !mode.IPv6() && len(f.ExcludePortsForIPs.IPv6()) > 0 {
			add(field, []string{fmt.Sprintf("IPv6 entries have no effect in %s mode", mode)})
		}
		if !mode.IPv4() && len(f.ExcludePortsForIPs.IPv4()) > 0 {
			add(field, []string{fmt.Sprintf("IPv4 entries have no effect in %s mode", mode)})
		}
	}
	return out
}

// Package cli is the command-line surface of the transparent-proxy engine: kumactl's
// `install transparent-proxy` flags, the --config document, and the install, uninstall and
// validate commands that kuma-init and meshinit share.
package cli

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/initcontainer"
)

// Flags are the transparent-proxy settings as flags, kumactl's spellings, plus --config. Flags and
// the document are two spellings of one configuration: the document (or the defaults) comes
// first, and each flag given replaces its field.
type Flags struct {
	configFile string
	resolvConf string
	// set holds, in the order given, what each flag does to a configuration; fields records which
	// document field each given flag set, to name the flag in validation errors.
	set    []func(*api.TransparentProxyConfig)
	fields map[string]string
}

// setter is a flag's pflag.Value: Set parses with the api parsers, so a bad value fails at once
// with a message naming the flag, the bad token and the accepted form.
type setter struct {
	flags  *Flags
	name   string
	field  string
	typ    string
	text   string
	isBool bool
	parse  func(string) (func(*api.TransparentProxyConfig), error)
}

func (s *setter) String() string   { return s.text }
func (s *setter) Type() string     { return s.typ }
func (s *setter) IsBoolFlag() bool { return s.isBool }
func (s *setter) Set(v string) error {
	apply, err := s.parse(v)
	if err != nil {
		return err
	}
	s.text = v
	s.flags.set = append(s.flags.set, apply)
	s.flags.fields[s.field] = s.name
	return nil
}

// to makes a flag parser that stores a parsed value in the field at returns.
func to[T any](parse func(string) (T, error), at func(*api.TransparentProxyConfig) *T) func(string) (func(*api.TransparentProxyConfig), error) {
	return func(s string) (func(*api.TransparentProxyConfig), error) {
		v, err := parse(s)
		return func(c *api.TransparentProxyConfig) { *at(c) = v }, err
	}
}

func parseString(s string) (string, error) { return s, nil }

func parseCount(s string) (uint, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, &api.FieldError{Value: s, Problem: "is not a whole number", Accepted: api.FormCount}
	}
	return uint(n), nil
}

// AddFlags defines the flags on fs.
func AddFlags(fs *pflag.FlagSet) *Flags {
	f := &Flags{fields: map[string]string{}}
	d := api.DefaultTransparentProxyConfig()
	def := func(v any) string { return fmt.Sprint(v) }
	add := func(name, field, typ, defText, usage string, isBool bool, parse func(string) (func(*api.TransparentProxyConfig), error)) {
		v := &setter{flags: f, name: "--" + name, field: field, typ: typ, text: defText, isBool: isBool, parse: parse}
		fs.Var(v, name, usage)
		if isBool {
			fs.Lookup(name).NoOptDefVal = "true"
		}
	}
	port := func(name, field, usage string, v uint16, at func(*api.TransparentProxyConfig) *uint16) {
		add(name, field, "port", def(v), usage, false, to(api.ParsePort, at))
	}
	boolean := func(name, field, usage string, v bool, at func(*api.TransparentProxyConfig) *bool) {
		add(name, field, "bool", def(v), usage, true, to(api.ParseBool, at))
	}

	fs.StringVar(&f.configFile, "config", "", "a "+api.ConfigKind+" document (YAML or JSON) to start from; flags given replace its fields")
	fs.StringVar(&f.resolvConf, "resolv-conf", initcontainer.DefaultResolvConf, "the resolv.conf whose nameservers' DNS is redirected")
	add("kuma-dp-user", "kumaDPUser", "user", d.KumaDPUser, "the proxy's user, by name or UID; its traffic is never redirected", false,
		to(parseString, func(c *api.TransparentProxyConfig) *string { return &c.KumaDPUser }))
	add("ip-family-mode", "ipFamilyMode", "mode", string(d.IPFamilyMode), "IP families to redirect: "+api.FormIPFamilyMode, false,
		to(api.ParseIPFamilyMode, func(c *api.TransparentProxyConfig) *api.IPFamilyMode { return &c.IPFamilyMode }))
	boolean("redirect-inbound", "redirect.inbound.enabled", "redirect inbound traffic to the sidecar (false for gateways)",
		d.Redirect.Inbound.Enabled, func(c *api.TransparentProxyConfig) *bool { return &c.Redirect.Inbound.Enabled })
	port("redirect-inbound-port", "redirect.inbound.port", "the sidecar's inbound port", d.Redirect.Inbound.Port,
		func(c *api.TransparentProxyConfig) *uint16 { return &c.Redirect.Inbound.Port })
	port("redirect-outbound-port", "redirect.outbound.port", "the sidecar's outbound port", d.Redirect.Outbound.Port,
		func(c *api.TransparentProxyConfig) *uint16 { return &c.Redirect.Outbound.Port })
	boolean("redirect-dns", "redirect.dns.enabled", "redirect DNS to the nameservers of resolv.conf to the sidecar's DNS",
		d.Redirect.DNS.Enabled, func(c *api.TransparentProxyConfig) *bool { return &c.Redirect.DNS.Enabled })
	add("redirect-all-dns-traffic", "redirect.dns.captureAll", "bool", def(d.Redirect.DNS.CaptureAll),
		"redirect DNS to any address to the sidecar's DNS (implies --redirect-dns)", true,
		func(s string) (func(*api.TransparentProxyConfig), error) {
			all, err := api.ParseBool(s)
			return func(c *api.TransparentProxyConfig) {
				c.Redirect.DNS.CaptureAll = all
				c.Redirect.DNS.Enabled = c.Redirect.DNS.Enabled || all
			}, err
		})
	port("redirect-dns-port", "redirect.dns.port", "the sidecar's DNS port", d.Redirect.DNS.Port,
		func(c *api.TransparentProxyConfig) *uint16 { return &c.Redirect.DNS.Port })
	add("skip-dns-conntrack-zone-split", "redirect.dns.conntrackZoneSplit", "bool", "false",
		"do not keep the proxy's and the applications' DNS flows in separate conntrack zones", true,
		func(s string) (func(*api.TransparentProxyConfig), error) {
			skip, err := api.ParseBool(s)
			return func(c *api.TransparentProxyConfig) { c.Redirect.DNS.ConntrackZoneSplit = !skip }, err
		})
	add("exclude-inbound-ports", "redirect.inbound.excludePorts", "ports", "", "inbound ports not redirected: "+api.FormPortRanges, false,
		to(api.ParsePortRanges, func(c *api.TransparentProxyConfig) *api.PortRanges { return &c.Redirect.Inbound.ExcludePorts }))
	add("exclude-outbound-ports", "redirect.outbound.excludePorts", "ports", "", "outbound ports not redirected: "+api.FormPortRanges, false,
		to(api.ParsePortRanges, func(c *api.TransparentProxyConfig) *api.PortRanges { return &c.Redirect.Outbound.ExcludePorts }))
	add("exclude-inbound-ips", "redirect.inbound.excludeIPs", "addresses", "", "sources whose inbound traffic is not redirected: "+api.FormCIDRs, false,
		to(api.ParseCIDRs, func(c *api.TransparentProxyConfig) *api.CIDRs { return &c.Redirect.Inbound.ExcludeIPs }))
	add("exclude-outbound-ips", "redirect.outbound.excludeIPs", "addresses", "", "destinations not redirected: "+api.FormCIDRs, false,
		to(api.ParseCIDRs, func(c *api.TransparentProxyConfig) *api.CIDRs { return &c.Redirect.Outbound.ExcludeIPs }))
	uids := 0
	add("exclude-outbound-ports-for-uids", "redirect.outbound.excludePortsForUIDs", "entry", "",
		"outbound traffic of UIDs to ports not redirected, repeatable: "+api.FormPortsForUIDs, false,
		func(s string) (func(*api.TransparentProxyConfig), error) {
			entries, err := api.ParsePortsForUIDsList(s)
			first := uids == 0
			uids++
			return func(c *api.TransparentProxyConfig) {
				if first { // the first occurrence replaces the document's list; later ones add to it
					c.Redirect.Outbound.ExcludePortsForUIDs = nil
				}
				c.Redirect.Outbound.ExcludePortsForUIDs = append(c.Redirect.Outbound.ExcludePortsForUIDs, entries...)
			}, err
		})
	boolean("drop-invalid-packets", "dropInvalidPackets", "drop packets conntrack finds invalid", d.DropInvalidPackets,
		func(c *api.TransparentProxyConfig) *bool { return &c.DropInvalidPackets })
	boolean("iptables-logs", "iptablesLogs", "log redirected packets, rate-limited, to the kernel log", d.IPTablesLogs,
		func(c *api.TransparentProxyConfig) *bool { return &c.IPTablesLogs })
	boolean("store-firewalld", "storeFirewalld", "also store the rules in firewalld's "+initcontainer.DefaultFirewalldDirect, d.StoreFirewalld,
		func(c *api.TransparentProxyConfig) *bool { return &c.StoreFirewalld })
	boolean("verbose", "verbose", "print the scripts applied and the rules removed", d.Verbose,
		func(c *api.TransparentProxyConfig) *bool { return &c.Verbose })
	add("wait", "wait", "seconds", def(d.Wait), "seconds to wait for the xtables lock", false,
		to(parseCount, func(c *api.TransparentProxyConfig) *uint { return &c.Wait }))
	add("max-retries", "maxRetries", "count", def(d.MaxRetries), "attempts after a failure to take the xtables lock", false,
		to(parseCount, func(c *api.TransparentProxyConfig) *uint { return &c.MaxRetries }))
	return f
}

// Config is the configuration the flags spell: the --config document or the defaults, with each
// given flag applied in order, validated. Errors name the flag where a flag set the field.
func (f *Flags) Config() (*api.TransparentProxyConfig, error) {
	cfg := api.DefaultTransparentProxyConfig()
	if f.configFile != "" {
		data, err := os.ReadFile(f.configFile)
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		if cfg, err = api.ParseTransparentProxyConfig(data); err != nil {
			return nil, fmt.Errorf("--config %s:\n%w", f.configFile, err)
		}
	}
	for _, apply := range f.set {
		apply(cfg)
	}
	if err := cfg.Validate(); err != nil {
		errs, _ := err.(api.FieldErrors)
		for _, e := range errs {
			if flag, ok := f.fields[e.Field]; ok {
				e.Field = flag + " (" + e.Field + ")"
			}
		}
		return nil, err
	}
	return cfg, nil
}

// Host reads what the rules need from the machine: the proxy's UID (an unknown user is an error
// before anything is touched) and the nameservers.
func (f *Flags) Host(cfg *api.TransparentProxyConfig) (initcontainer.Host, error) {
	host, err := initcontainer.ReadHost(cfg, f.resolvConf)
	if errs, ok := err.(api.FieldErrors); ok {
		for _, e := range errs {
			if flag, ok := f.fields[e.Field]; ok {
				e.Field = flag
			}
		}
	}
	return host, err
}

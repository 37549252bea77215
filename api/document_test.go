package api

import (
	"flag"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/golden"
)

var update = flag.Bool("update", false, "rewrite golden files and the README's generated tables")

// fullConfig sets every field away from its default.
func fullConfig() *TransparentProxyConfig {
	c := DefaultTransparentProxyConfig()
	c.KumaDPUser = "kuma-dp"
	c.SetFamily(IPFamilyIPv6)
	c.Redirect.Inbound = Flow{Enabled: false, Port: 16006, IncludePorts: Ports{80, 443},
		ExcludePortsForIPs: CIDRs{netip.MustParsePrefix("10.0.0.0/8")}, InsertRedirectInsteadOfAppend: true}
	c.SetInboundExcluded(PortRanges{{22, 22}, {8000, 8100}})
	c.Redirect.Outbound = Flow{Enabled: false, Port: 16001,
		ExcludePortsForIPs: CIDRs{netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("fd00::/8")},
		ExcludePortsForUIDs: PortsForUIDsList{
			{Protocol: ProtocolTCP, Ports: PortRanges{{22, 22}}, UIDs: UIDRange{1000, 2000}},
			{Ports: PortRanges{{53, 53}}, UIDs: UIDRange{106, 106}},
		}, InsertRedirectInsteadOfAppend: true}
	c.SetOutboundExcluded(PortRanges{{5432, 5432}, {9000, 9100}})
	c.Redirect.DNS = DNSRedirect{Enabled: true, Port: 16053, CaptureAll: true, SkipConntrackZoneSplit: true,
		ResolvConfigPath: "/run/resolv.conf"}
	c.Redirect.VNet.Networks = VNetworks{{Interface: "docker0", CIDR: netip.MustParsePrefix("172.17.0.0/16")},
		{Interface: "br+", CIDR: netip.MustParsePrefix("fd01::/64")}}
	c.Meshinit.ReachableServices = Services{"redis_kuma-demo_svc_6379", "elastic_kuma-demo_svc_9200"}
	c.SetBackend(BackendIPTables) // storeFirewalld's rules are iptables rules
	c.DropInvalidPackets, c.StoreFirewalld, c.Verbose, c.DryRun, c.CNIMode = true, true, true, true, true
	c.Log = Log{Enabled: true, Level: 4}
	c.Comments.Disabled = true
	c.Wait, c.WaitInterval = 10, 500
	c.Retry = Retry{MaxRetries: 0, SleepBetweenRetries: Duration(time.Second)}
	c.IPTablesExecutables = Executables{"iptables": "/usr/sbin/iptables-nft", "iptables-save": "/usr/sbin/iptables-nft-save",
		"iptables-restore": "/usr/sbin/iptables-nft-restore"}
	return c
}

// TestDocumentGolden pins the document's format: the defaults and a document with every field
// set. Regenerate with go test ./api -run TestDocumentGolden -update.
func TestDocumentGolden(t *testing.T) {
	for name, cfg := range map[string]*TransparentProxyConfig{
		"transparent-proxy-config.defaults.yaml":    DefaultTransparentProxyConfig(),
		"transparent-proxy-config.every-field.yaml": fullConfig(),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := cfg.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name), got, *update)
			back, err := ParseTransparentProxyConfig(got)
			if err != nil {
				t.Fatalf("parsing what Marshal wrote: %v", err)
			}
			if !reflect.DeepEqual(back, cfg) {
				t.Errorf("round trip changed the config:\n got %#v\nwant %#v", back, cfg)
			}
		})
	}
}

func TestParseDocumentForms(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want func(*TransparentProxyConfig)
	}{
		{name: "an empty object keeps every default", doc: "{}\n", want: func(*TransparentProxyConfig) {}},
		{name: "JSON", doc: `{"redirect":{"dns":{"enabled":true}}}`,
			want: func(c *TransparentProxyConfig) { c.Redirect.DNS.Enabled = true }},
		{name: "lists as annotation strings", doc: "redirect:\n  inbound:\n    excludePorts: \"22,80,\"\n  outbound:\n    excludePortsForUIDs: \"TCP:22:1000;tcp,udp:53:106\"\n",
			want: func(c *TransparentProxyConfig) {
				c.Redirect.Inbound.ExcludePorts = Ports{22, 80}
				c.Redirect.Outbound.ExcludePortsForUIDs = PortsForUIDsList{
					{Protocol: ProtocolTCP, Ports: PortRanges{{22, 22}}, UIDs: UIDRange{1000, 1000}},
					{Ports: PortRanges{{53, 53}}, UIDs: UIDRange{106, 106}}}
			}},
		{name: "port lists with numbers and strings", doc: "redirect:\n  outbound:\n    excludePorts: [22, \"80, 443\"]\n",
			want: func(c *TransparentProxyConfig) { c.Redirect.Outbound.ExcludePorts = Ports{22, 80, 443} }},
		{name: "meshinit's ranges", doc: "meshinit:\n  redirect:\n    inbound:\n      excludePortRanges: [8000-8100]\n",
			want: func(c *TransparentProxyConfig) {
				c.Meshinit.Redirect.Inbound.ExcludePortRanges = PortRanges{{8000, 8100}}
			}},
		{name: "numeric user, quoted port and YAML 1.1 booleans", doc: "kumaDPUser: 5678\nredirect:\n  inbound:\n    port: \"16006\"\n  dns:\n    enabled: yes\n",
			want: func(c *TransparentProxyConfig) { c.Redirect.Inbound.Port, c.Redirect.DNS.Enabled = 16006, true }},
		{name: "Kuma's spelling of the IP family", doc: "ipFamilyMode: IPv4\n",
			want: func(c *TransparentProxyConfig) { c.IPFamilyMode = IPFamilyIPv4 }},
		{name: "durations as text and as nanoseconds", doc: "retry:\n  sleepBetweenRetries: 500ms\n",
			want: func(c *TransparentProxyConfig) { c.Retry.SleepBetweenRetries = Duration(500 * time.Millisecond) }},
		{name: "a separator and a comment after the document", doc: "wait: 1\n---\n# the end\n",
			want: func(c *TransparentProxyConfig) { c.Wait = 1 }},
		{name: "nanoseconds", doc: "retry:\n  sleepBetweenRetries: 1000000000\n",
			want: func(c *TransparentProxyConfig) { c.Retry.SleepBetweenRetries = Duration(time.Second) }},
		{name: "null keeps the default", doc: "ipFamilyMode: null\n",
			want: func(*TransparentProxyConfig) {}},
		{name: "an empty list replaces nothing", doc: "redirect:\n  inbound:\n    excludePortsForIPs: []\n",
			want: func(c *TransparentProxyConfig) { c.Redirect.Inbound.ExcludePortsForIPs = CIDRs{} }},
		{name: "Kuma's eBPF mode off", doc: "ebpf:\n  enabled: false\n", want: func(*TransparentProxyConfig) {}},
		{name: "the nftables backend", doc: "meshinit:\n  backend: nftables\n",
			want: func(c *TransparentProxyConfig) { c.SetBackend(BackendNFTables) }},
		{name: "auto named is auto", doc: "meshinit:\n  backend: auto\n",
			want: func(c *TransparentProxyConfig) { c.Meshinit.Backend = BackendAuto }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTransparentProxyConfig([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultTransparentProxyConfig()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %#v\nwant %#v", got, want)
			}
		})
	}
}

// TestReadDocumentOverABase reads documents as Kuma's loader reads several files: each onto what
// the earlier ones made, its lists replacing theirs, and says what it gave and what it ignored.
func TestReadDocumentOverABase(t *testing.T) {
	base := DefaultTransparentProxyConfig()
	base.Redirect.Inbound.ExcludePorts = Ports{22}
	base.Redirect.DNS.Enabled = true
	doc, err := ReadTransparentProxyConfig([]byte("redirect:\n  inbound:\n    excludePorts: [80]\n  dns: {captureAll: true}\nfuture: 1\n"), base)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultTransparentProxyConfig()
	want.Redirect.Inbound.ExcludePorts = Ports{80}
	want.Redirect.DNS.Enabled, want.Redirect.DNS.CaptureAll = true, true
	if !reflect.DeepEqual(doc.Config, want) {
		t.Errorf("got  %#v\nwant %#v", doc.Config, want)
	}
	if want := []string{"redirect.dns.captureAll", "redirect.inbound.excludePorts"}; !reflect.DeepEqual(doc.Given, want) {
		t.Errorf("Given = %q, want %q", doc.Given, want)
	}
	if want := []string{"future is not a field Kuma or meshinit reads; it is ignored"}; !reflect.DeepEqual(doc.Warnings, want) {
		t.Errorf("Warnings = %q, want %q", doc.Warnings, want)
	}
	if !reflect.DeepEqual(base.Redirect.Inbound.ExcludePorts, Ports{22}) {
		t.Error("reading changed the base")
	}
}

func TestParseDocumentErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{name: "every problem at once", doc: `
kumaDPUser: "kuma dp"
ipFamilyMode: dual
redirect:
  inbound:
    port: 70000
    excludePorts: "22,abc,8000-8100"
  outbound:
    excludePortsForIPs: [10.0.0.0/8, 300.0.0.1]
  dns:
    enabled: maybe
wait: -1
log:
  level: 9
ebpf:
  enabled: true
`, want: []string{
			`ipFamilyMode: "dual" is not an IP family mode; accepted: dualstack, ipv4 or ipv6`,
			`log.level: "9" is not a kernel log level; accepted: ` + FormLogLevel,
			`redirect.dns.enabled: "maybe" is not a boolean; accepted: true or false`,
			`redirect.inbound.excludePorts: "abc" in "22,abc,8000-8100" is not a port number; accepted: ` + FormPorts,
			`redirect.inbound.port: "70000" is out of range 1-65535; accepted: a port number 1-65535`,
			`redirect.outbound.excludePortsForIPs: "300.0.0.1" in "10.0.0.0/8,300.0.0.1" is not an IP address; accepted: ` + FormCIDRs,
			`wait: "-1" is not a whole number; accepted: a whole number 0 or more`,
			`kumaDPUser: "kuma dp" is not a user name or UID; accepted: ` + FormUser,
			`ebpf.enabled: "true" asks for Kuma's eBPF mode, which meshinit does not implement; accepted: false: iptables rules`,
		}},
		{name: "a range in Kuma's single ports", doc: "redirect:\n  inbound:\n    excludePorts: [8000-8100]\n",
			want: []string{`redirect.inbound.excludePorts: "8000-8100" is a range, which Kuma's single ports cannot hold; accepted: ` + FormPorts}},
		{name: "redirect ports collide", doc: "redirect:\n  inbound:\n    port: 15001\n  dns:\n    enabled: true\n    port: 15001\n",
			want: []string{
				`redirect.inbound.port: "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`,
				`redirect.dns.port: "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`,
				`redirect.dns.port: "15001" is also redirect.inbound.port; accepted: a port no other redirect uses`,
			}},
		{name: "disabled redirects may share ports", doc: "redirect:\n  inbound:\n    enabled: false\n    port: 15001\n",
			want: nil},
		{name: "Kuma's readers refuse port 0 even where it is off", doc: "redirect:\n  dns:\n    port: 0\n",
			want: []string{`redirect.dns.port: "0" is out of range 1-65535; accepted: a port number 1-65535`}},
		{name: "captureAll without DNS", doc: "redirect:\n  dns:\n    captureAll: true\n",
			want: []string{`redirect.dns.captureAll: "true" needs redirect.dns.enabled; accepted: false, or redirect.dns.enabled: true`}},
		{name: "ipv6 in Kuma's field", doc: "ipFamilyMode: ipv6\n",
			want: []string{`ipFamilyMode: "ipv6" is not an IP family mode Kuma reads; accepted: dualstack or ipv4; ipv6 is meshinit.ipFamilyMode`}},
		{name: "meshinit's mode narrows only dualstack", doc: "ipFamilyMode: ipv4\nmeshinit:\n  ipFamilyMode: ipv6\n",
			want: []string{`meshinit.ipFamilyMode: "ipv6" narrows ipv4, not dualstack; accepted: ipv6 with ipFamilyMode: dualstack`}},
		{name: "inbound per-UID exclusions", doc: "redirect:\n  inbound:\n    excludePortsForUIDs: [\"1000\"]\n",
			want: []string{`redirect.inbound.excludePortsForUIDs: "1000" cannot apply: inbound traffic has no local user to match; accepted: an empty list`}},
		{name: "a family's executables in part", doc: "iptablesExecutables:\n  iptables: /sbin/iptables\n  ip6tables-save: sbin/ip6tables-save\n",
			want: []string{
				`iptablesExecutables.ip6tables-save: "sbin/ip6tables-save" is not an absolute path; accepted: the absolute path of the program`,
				`iptablesExecutables: "iptables:/sbin/iptables,ip6tables-save:sbin/ip6tables-save" names some of iptables, iptables-save, iptables-restore but not all; accepted: all three of a family, or none`,
				`iptablesExecutables: "iptables:/sbin/iptables,ip6tables-save:sbin/ip6tables-save" names some of ip6tables, ip6tables-save, ip6tables-restore but not all; accepted: all three of a family, or none`,
			}},
		{name: "duplicate key", doc: "wait: 1\nwait: 2\n",
			want: []string{`document: is not YAML or JSON: yaml: unmarshal errors:` + "\n" + `  line 2: mapping key "wait" already defined at line 1; accepted: a transparent-proxy configuration document`}},
		{name: "empty", doc: "# nothing but a comment\n",
			want: []string{`document: is empty; accepted: a transparent-proxy configuration document, such as redirect: {inbound: {excludePorts: [22]}}`}},
		{name: "a second document", doc: "redirect:\n  inbound:\n    excludePorts: [22]\n---\nredirect:\n  outbound:\n    excludePorts: [5432]\n",
			want: []string{`document: has a second YAML document, starting at line 4, whose settings would be ignored; accepted: one transparent-proxy configuration document, with no other after ---`}},
		{name: "not an object", doc: "- a\n- b\n",
			want: []string{`document: is not an object; accepted: a transparent-proxy configuration document, such as redirect: {inbound: {excludePorts: [22]}}`}},
		{name: "section of the wrong type", doc: "redirect: 5\n",
			want: []string{`redirect: "5" is not an object; accepted: an object with the fields of redirect`}},
		{name: "list item of the wrong type", doc: "meshinit:\n  reachableServices: [{a: b}]\n",
			want: []string{`meshinit.reachableServices: "{\"a\":\"b\"}" is neither a string nor a number`}},
		{name: "a duration without its unit", doc: "retry:\n  sleepBetweenRetries: \"2\"\n",
			want: []string{`retry.sleepBetweenRetries: "2" is not a non-negative duration; accepted: ` + FormDurationText}},
		{name: "an unknown backend", doc: "meshinit:\n  backend: ebpf\n",
			want: []string{`meshinit.backend: "ebpf" is not a transparent-proxy backend; accepted: auto, iptables or nftables`}},
		{name: "firewalld's iptables rules with nftables", doc: "storeFirewalld: true\nmeshinit:\n  backend: nftables\n",
			want: []string{`storeFirewalld: "true" stores iptables rules in firewalld's direct.xml, which meshinit.backend: nftables does not install; accepted: false, or meshinit.backend: iptables or auto`}},
		{name: "user out of range", doc: "kumaDPUser: 4294967295\n",
			want: []string{`kumaDPUser: "4294967295" is out of range for a UID; accepted: ` + FormUser}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseTransparentProxyConfig([]byte(tc.doc))
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
				if strings.Contains(tc.name, "duplicate") {
					got = []string{err.Error()}
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestParseDocumentTooLarge(t *testing.T) {
	doc := "meshinit:\n  reachableServices: [" + strings.Repeat("a,", MaxDocumentSize/2) + "a]\n"
	_, err := ParseTransparentProxyConfig([]byte(doc))
	if err == nil || !strings.HasPrefix(err.Error(), "document: is ") || !strings.Contains(err.Error(), "over the limit; accepted: at most 262144 bytes") {
		t.Errorf("got %v, want a size error", err)
	}
}

func TestValidateConfigBuiltInCode(t *testing.T) {
	c := DefaultTransparentProxyConfig()
	c.Redirect.Outbound.Port = 0
	c.Meshinit.Redirect.Inbound.ExcludePortRanges = PortRanges{{0, 5}, {9, 8}}
	c.Redirect.Outbound.ExcludePortsForIPs = CIDRs{{}}
	c.Redirect.Outbound.ExcludePortsForUIDs = PortsForUIDsList{{Protocol: "sctp", UIDs: UIDRange{1, 1}}, {UIDs: UIDRange{5, 4}}}
	c.Meshinit.ReachableServices = Services{"ok", "not ok"}
	c.IPFamilyMode = ""
	want := []string{
		`ipFamilyMode: is not an IP family mode Kuma reads; accepted: dualstack or ipv4; ipv6 is meshinit.ipFamilyMode`,
		`redirect.outbound.port: "0" is out of range 1-65535; accepted: a port number 1-65535`,
		`redirect.outbound.excludePortsForIPs[0]: "invalid Prefix" is not a CIDR; accepted: ` + FormCIDRs,
		`meshinit.redirect.inbound.excludePortRanges[0]: "0-5" is not a port or an ascending range; accepted: ` + FormPortRanges,
		`meshinit.redirect.inbound.excludePortRanges[1]: "9-8" is not a port or an ascending range; accepted: ` + FormPortRanges,
		`redirect.outbound.excludePortsForUIDs[0]: "sctp" in "sctp:1" is not a protocol (tcp, udp or *); accepted: ` + FormPortsForUIDs,
		`redirect.outbound.excludePortsForUIDs[1]: "5-4" starts above its end; accepted: ` + FormPortsForUIDs,
		`meshinit.reachableServices[1]: "not ok" has ' ', which a kuma.io/service value cannot hold (letters, digits, '.', '_', '-', ':', '/'); accepted: ` + FormServices,
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, err := c.Marshal(); err == nil {
		t.Error("Marshal wrote an invalid config")
	}
}

func TestConfigWarnings(t *testing.T) {
	c := DefaultTransparentProxyConfig()
	c.IPFamilyMode = IPFamilyIPv4
	c.SetInboundExcluded(PortRanges{{22, 22}, {20, 30}})
	c.Redirect.Outbound.ExcludePortsForIPs = CIDRs{netip.MustParsePrefix("10.0.0.1/8"), netip.MustParsePrefix("fd00::/8")}
	c.Redirect.Inbound.IncludePorts = Ports{8080}
	c.SetBackend(BackendNFTables)
	c.IPTablesExecutables = Executables{"iptables": "/sbin/iptables", "iptables-save": "/sbin/iptables-save", "iptables-restore": "/sbin/iptables-restore"}
	want := []string{
		"redirect.inbound.excludePorts: 20-30 overlaps 22",
		"redirect.inbound.excludePorts: have no effect: redirect.inbound.includePorts names the only ports redirected, as in Kuma",
		"iptablesExecutables: ignored: meshinit.backend is nftables, which runs no iptables program",
		"redirect.outbound.excludePortsForIPs: 10.0.0.1/8 has host bits set; it means 10.0.0.0/8",
		"redirect.outbound.excludePortsForIPs: IPv6 entries have no effect in ipv4 mode",
	}
	if got := c.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings() =\n%q\nwant\n%q", got, want)
	}
}

func TestFamilyAndExcludedPorts(t *testing.T) {
	c := DefaultTransparentProxyConfig()
	c.SetFamily(IPFamilyIPv6)
	if c.IPFamilyMode != IPFamilyDualStack || c.Meshinit.IPFamilyMode != IPFamilyIPv6 || c.Family() != IPFamilyIPv6 {
		t.Errorf("ipv6: Kuma's %q, meshinit's %q", c.IPFamilyMode, c.Meshinit.IPFamilyMode)
	}
	c.SetFamily(IPFamilyIPv4)
	if c.IPFamilyMode != IPFamilyIPv4 || c.Meshinit.IPFamilyMode != "" {
		t.Errorf("ipv4: Kuma's %q, meshinit's %q", c.IPFamilyMode, c.Meshinit.IPFamilyMode)
	}
	c.SetOutboundExcluded(PortRanges{{22, 22}, {8000, 8100}, {53, 53}})
	if !reflect.DeepEqual(c.Redirect.Outbound.ExcludePorts, Ports{22, 53}) ||
		!reflect.DeepEqual(c.Meshinit.Redirect.Outbound.ExcludePortRanges, PortRanges{{8000, 8100}}) {
		t.Errorf("split into %v and %v", c.Redirect.Outbound.ExcludePorts, c.Meshinit.Redirect.Outbound.ExcludePortRanges)
	}
	if got, want := c.OutboundExcluded(), (PortRanges{{22, 22}, {53, 53}, {8000, 8100}}); !reflect.DeepEqual(got, want) {
		t.Errorf("OutboundExcluded() = %v, want %v", got, want)
	}
}

package api

import (
	"flag"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/golden"
)

var update = flag.Bool("update", false, "rewrite golden files and the README's generated tables")

// fullConfig sets every field away from its default.
func fullConfig() *TransparentProxyConfig {
	c := DefaultTransparentProxyConfig()
	c.KumaDPUser = "kuma-dp"
	c.IPFamilyMode = IPFamilyIPv4
	c.Redirect.Inbound = InboundRedirect{Enabled: false, Port: 16006,
		ExcludePorts: PortRanges{{22, 22}, {8000, 8100}}, ExcludeIPs: CIDRs{netip.MustParsePrefix("10.0.0.0/8")}}
	c.Redirect.Outbound = OutboundRedirect{Port: 16001,
		ExcludePorts: PortRanges{{5432, 5432}},
		ExcludeIPs:   CIDRs{netip.MustParsePrefix("169.254.169.254/32"), netip.MustParsePrefix("fd00::/8")},
		ExcludePortsForUIDs: PortsForUIDsList{
			{Protocol: ProtocolTCP, Ports: PortRanges{{22, 22}}, UIDs: UIDRange{1000, 2000}},
			{Ports: PortRanges{{53, 53}}, UIDs: UIDRange{106, 106}},
		}}
	c.Redirect.DNS = DNSRedirect{Enabled: true, Port: 16053, CaptureAll: true, ConntrackZoneSplit: false}
	c.ReachableServices = Services{"redis_kuma-demo_svc_6379", "elastic_kuma-demo_svc_9200"}
	c.DropInvalidPackets, c.IPTablesLogs, c.StoreFirewalld, c.Verbose = true, true, true, true
	c.Wait, c.MaxRetries = 10, 0
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
		{name: "header only keeps every default", doc: "apiVersion: meshinit.io/v1alpha1\nkind: TransparentProxyConfig\n",
			want: func(*TransparentProxyConfig) {}},
		{name: "JSON", doc: `{"apiVersion":"meshinit.io/v1alpha1","kind":"TransparentProxyConfig","redirect":{"dns":{"enabled":true}}}`,
			want: func(c *TransparentProxyConfig) { c.Redirect.DNS.Enabled = true }},
		{name: "lists as annotation strings", doc: header + "redirect:\n  inbound:\n    excludePorts: \"22,8000-8100\"\n  outbound:\n    excludePortsForUIDs: \"tcp:22:1000;53:106\"\n",
			want: func(c *TransparentProxyConfig) {
				c.Redirect.Inbound.ExcludePorts = PortRanges{{22, 22}, {8000, 8100}}
				c.Redirect.Outbound.ExcludePortsForUIDs = PortsForUIDsList{
					{Protocol: ProtocolTCP, Ports: PortRanges{{22, 22}}, UIDs: UIDRange{1000, 1000}},
					{Ports: PortRanges{{53, 53}}, UIDs: UIDRange{106, 106}}}
			}},
		{name: "port lists with numbers", doc: header + "redirect:\n  outbound:\n    excludePorts: [22, 8000-8100]\n",
			want: func(c *TransparentProxyConfig) { c.Redirect.Outbound.ExcludePorts = PortRanges{{22, 22}, {8000, 8100}} }},
		{name: "numeric user and quoted port", doc: header + "kumaDPUser: 5678\nredirect:\n  inbound:\n    port: \"16006\"\n",
			want: func(c *TransparentProxyConfig) { c.Redirect.Inbound.Port = 16006 }},
		{name: "null keeps the default", doc: header + "ipFamilyMode: null\n",
			want: func(*TransparentProxyConfig) {}},
		{name: "an empty list replaces nothing", doc: header + "redirect:\n  inbound:\n    excludeIPs: []\n",
			want: func(c *TransparentProxyConfig) { c.Redirect.Inbound.ExcludeIPs = CIDRs{} }},
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

const header = "apiVersion: meshinit.io/v1alpha1\nkind: TransparentProxyConfig\n"

func TestParseDocumentErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want []string
	}{
		{name: "every problem at once", doc: `
kind: Pod
kumaDPUser: "kuma dp"
ipFamilyMode: dual
redirect:
  inbound:
    port: 70000
    excludePorts: "22,abc"
    exclude: [1]
  outbound:
    excludeIPs: [10.0.0.0/8, 300.0.0.1]
  dns:
    enabled: yes
wait: -1
extra: true
`, want: []string{
			`apiVersion: is required; accepted: meshinit.io/v1alpha1`,
			`extra: is not a field of the document; accepted: apiVersion, kind, kumaDPUser, ipFamilyMode, redirect, reachableServices, dropInvalidPackets, iptablesLogs, storeFirewalld, verbose, wait, maxRetries`,
			`ipFamilyMode: "dual" is not an IP family mode; accepted: dualstack, ipv4 or ipv6`,
			`redirect.dns.enabled: "yes" is not a boolean; accepted: true or false`,
			`redirect.inbound.exclude: is not a field of redirect.inbound; accepted: enabled, port, excludePorts, excludeIPs`,
			`redirect.inbound.excludePorts: "abc" in "22,abc" is not a port number; accepted: ` + FormPortRanges,
			`redirect.inbound.port: "70000" is out of range 1-65535; accepted: a port number 1-65535`,
			`redirect.outbound.excludeIPs: "300.0.0.1" in "10.0.0.0/8,300.0.0.1" is not an IP address; accepted: ` + FormCIDRs,
			`wait: "-1" is not a whole number; accepted: a whole number 0 or more`,
			`kind: "Pod" is not this document's kind; accepted: TransparentProxyConfig`,
			`kumaDPUser: "kuma dp" is not a user name or UID; accepted: ` + FormUser,
		}},
		{name: "unsupported version", doc: "apiVersion: meshinit.io/v2\nkind: TransparentProxyConfig\n",
			want: []string{`apiVersion: "meshinit.io/v2" is not a supported version; accepted: meshinit.io/v1alpha1`}},
		{name: "redirect ports collide", doc: header + "redirect:\n  inbound:\n    port: 15001\n  dns:\n    enabled: true\n    port: 15001\n",
			want: []string{
				`redirect.inbound.port: "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`,
				`redirect.dns.port: "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`,
				`redirect.dns.port: "15001" is also redirect.inbound.port; accepted: a port no other redirect uses`,
			}},
		{name: "disabled redirects may share ports", doc: header + "redirect:\n  inbound:\n    enabled: false\n    port: 15001\n",
			want: nil},
		{name: "captureAll without DNS", doc: header + "redirect:\n  dns:\n    captureAll: true\n",
			want: []string{`redirect.dns.captureAll: "true" needs redirect.dns.enabled; accepted: false, or redirect.dns.enabled: true`}},
		{name: "duplicate key", doc: header + "wait: 1\nwait: 2\n",
			want: []string{`document: is not YAML or JSON: yaml: unmarshal errors:` + "\n" + `  line 4: mapping key "wait" already defined at line 3; accepted: a TransparentProxyConfig document`}},
		{name: "empty", doc: "# nothing but a comment\n",
			want: []string{`document: is empty; accepted: a TransparentProxyConfig document starting with apiVersion: meshinit.io/v1alpha1`}},
		{name: "not an object", doc: "- a\n- b\n",
			want: []string{`document: is not an object; accepted: a TransparentProxyConfig document starting with apiVersion: meshinit.io/v1alpha1`}},
		{name: "section of the wrong type", doc: header + "redirect: 5\n",
			want: []string{`redirect: "5" is not an object; accepted: an object with the fields of redirect`}},
		{name: "list item of the wrong type", doc: header + "reachableServices: [{a: b}]\n",
			want: []string{`reachableServices: "{\"a\":\"b\"}" is neither a string nor a number`}},
		{name: "user out of range", doc: header + "kumaDPUser: 4294967295\n",
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
	doc := header + "reachableServices: [" + strings.Repeat("a,", MaxDocumentSize/2) + "a]\n"
	_, err := ParseTransparentProxyConfig([]byte(doc))
	if err == nil || !strings.HasPrefix(err.Error(), "document: is ") || !strings.Contains(err.Error(), "over the limit; accepted: at most 262144 bytes") {
		t.Errorf("got %v, want a size error", err)
	}
}

func TestValidateConfigBuiltInCode(t *testing.T) {
	c := DefaultTransparentProxyConfig()
	c.Redirect.Outbound.Port = 0
	c.Redirect.Inbound.ExcludePorts = PortRanges{{0, 5}, {9, 8}}
	c.Redirect.Outbound.ExcludeIPs = CIDRs{{}}
	c.Redirect.Outbound.ExcludePortsForUIDs = PortsForUIDsList{{Protocol: "sctp", UIDs: UIDRange{1, 1}}, {UIDs: UIDRange{5, 4}}}
	c.ReachableServices = Services{"ok", "not ok"}
	c.IPFamilyMode = ""
	want := []string{
		`ipFamilyMode: is not an IP family mode; accepted: dualstack, ipv4 or ipv6`,
		`redirect.outbound.port: "0" is out of range 1-65535; accepted: a port number 1-65535`,
		`redirect.inbound.excludePorts[0]: "0-5" is not a port or an ascending range; accepted: ` + FormPortRanges,
		`redirect.inbound.excludePorts[1]: "9-8" is not a port or an ascending range; accepted: ` + FormPortRanges,
		`redirect.outbound.excludeIPs[0]: "invalid Prefix" is not a CIDR; accepted: ` + FormCIDRs,
		`redirect.outbound.excludePortsForUIDs[0]: "sctp" in "sctp:1" is not a protocol (tcp, udp or *); accepted: ` + FormPortsForUIDs,
		`redirect.outbound.excludePortsForUIDs[1]: "5-4" starts above its end; accepted: ` + FormPortsForUIDs,
		`reachableServices[1]: "not ok" has ' ', which a kuma.io/service value cannot hold (letters, digits, '.', '_', '-', ':', '/'); accepted: ` + FormServices,
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
	c.Redirect.Inbound.ExcludePorts = PortRanges{{22, 22}, {22, 22}}
	c.Redirect.Outbound.ExcludeIPs = CIDRs{netip.MustParsePrefix("10.0.0.1/8"), netip.MustParsePrefix("fd00::/8")}
	want := []string{
		"redirect.inbound.excludePorts: 22 overlaps 22",
		"redirect.outbound.excludeIPs: 10.0.0.1/8 has host bits set; it means 10.0.0.0/8",
		"redirect.outbound.excludeIPs: IPv6 entries have no effect in ipv4 mode",
	}
	if got := c.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Warnings() =\n%q\nwant\n%q", got, want)
	}
}

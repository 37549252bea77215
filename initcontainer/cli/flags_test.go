package cli

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/meshinit/meshinit/api"
)

func parse(t *testing.T, args ...string) (*api.TransparentProxyConfig, error) {
	t.Helper()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	f := AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.Config()
}

func TestFlagsSpellTheDocument(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want func(*api.TransparentProxyConfig)
	}{
		{nil, func(*api.TransparentProxyConfig) {}},
		{[]string{"--kuma-dp-user", "kuma-dp"}, func(c *api.TransparentProxyConfig) { c.KumaDPUser = "kuma-dp" }},
		{[]string{"--ip-family-mode", "ipv4"}, func(c *api.TransparentProxyConfig) { c.IPFamilyMode = api.IPFamilyIPv4 }},
		{[]string{"--ip-family-mode", "ipv6"}, func(c *api.TransparentProxyConfig) { c.SetFamily(api.IPFamilyIPv6) }},
		{[]string{"--kuma-dp-uid", "1234"}, func(c *api.TransparentProxyConfig) { c.KumaDPUser = "1234" }},
		{[]string{"--redirect-inbound=false"}, func(c *api.TransparentProxyConfig) { c.Redirect.Inbound.Enabled = false }},
		{[]string{"--redirect-inbound-port", "16006", "--redirect-outbound-port=16001"}, func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.Port, c.Redirect.Outbound.Port = 16006, 16001
		}},
		{[]string{"--redirect-dns"}, func(c *api.TransparentProxyConfig) { c.Redirect.DNS.Enabled = true }},
		{[]string{"--redirect-all-dns-traffic"}, func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.Enabled, c.Redirect.DNS.CaptureAll = true, true
		}},
		{[]string{"--redirect-dns", "--redirect-dns-port", "16053", "--skip-dns-conntrack-zone-split"}, func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.Enabled, c.Redirect.DNS.Port, c.Redirect.DNS.SkipConntrackZoneSplit = true, 16053, true
		}},
		{[]string{"--exclude-inbound-ports", "22,8000-8100", "--exclude-outbound-ports", "5432"}, func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.ExcludePorts = api.Ports{22}
			c.Meshinit.Redirect.Inbound.ExcludePortRanges = api.PortRanges{{First: 8000, Last: 8100}}
			c.Redirect.Outbound.ExcludePorts = api.Ports{5432}
		}},
		{[]string{"--exclude-inbound-ips", "10.0.0.0/8", "--exclude-outbound-ips", "fd00::1", "--exclude-outbound-ips", "10.1.0.0/16,10.2.0.0/16"}, func(c *api.TransparentProxyConfig) {
			c.Redirect.Inbound.ExcludePortsForIPs = api.CIDRs{netip.MustParsePrefix("10.0.0.0/8")}
			c.Redirect.Outbound.ExcludePortsForIPs = api.CIDRs{netip.MustParsePrefix("fd00::1/128"),
				netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/16")}
		}},
		{[]string{"--vnet", "docker0:172.17.0.0/16", "--vnet", "br+:172.18.0.0/16", "--disable-comments", "--wait-interval", "100",
			"--sleep-between-retries", "500ms", "--redirect-inbound-insert-instead-of-append", "--redirect-outbound-insert-instead-of-append",
			"--iptables-executables", "iptables:/a/iptables,iptables-save:/a/iptables-save,iptables-restore:/a/iptables-restore"}, func(c *api.TransparentProxyConfig) {
			c.Redirect.VNet.Networks = api.VNetworks{{Interface: "docker0", CIDR: netip.MustParsePrefix("172.17.0.0/16")},
				{Interface: "br+", CIDR: netip.MustParsePrefix("172.18.0.0/16")}}
			c.Comments.Disabled, c.WaitInterval, c.Retry.SleepBetweenRetries = true, 100, api.Duration(500e6)
			c.Redirect.Inbound.InsertRedirectInsteadOfAppend, c.Redirect.Outbound.InsertRedirectInsteadOfAppend = true, true
			c.IPTablesExecutables = api.Executables{"iptables": "/a/iptables", "iptables-save": "/a/iptables-save", "iptables-restore": "/a/iptables-restore"}
		}},
		{[]string{"--exclude-outbound-ports-for-uids", "tcp:22:1000", "--exclude-outbound-ports-for-uids", "53:106;udp:54:107"}, func(c *api.TransparentProxyConfig) {
			c.Redirect.Outbound.ExcludePortsForUIDs = api.PortsForUIDsList{
				{Protocol: api.ProtocolTCP, Ports: api.PortRanges{{First: 22, Last: 22}}, UIDs: api.UIDRange{First: 1000, Last: 1000}},
				{Ports: api.PortRanges{{First: 53, Last: 53}}, UIDs: api.UIDRange{First: 106, Last: 106}},
				{Protocol: api.ProtocolUDP, Ports: api.PortRanges{{First: 54, Last: 54}}, UIDs: api.UIDRange{First: 107, Last: 107}},
			}
		}},
		{[]string{"--drop-invalid-packets", "--iptables-logs", "--store-firewalld", "--verbose", "--wait", "0", "--max-retries", "9"}, func(c *api.TransparentProxyConfig) {
			c.DropInvalidPackets, c.Log.Enabled, c.StoreFirewalld, c.Verbose, c.Wait, c.Retry.MaxRetries = true, true, true, true, 0, 9
		}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			got, err := parse(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := api.DefaultTransparentProxyConfig()
			tc.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %#v\nwant %#v", got, want)
			}
		})
	}
}

func TestFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--exclude-inbound-ports", "22,x"}, `invalid argument "22,x" for "--exclude-inbound-ports" flag: "x" in "22,x" is not a port number; accepted: ` + api.FormPortRanges},
		{[]string{"--redirect-inbound-port", "0"}, `invalid argument "0" for "--redirect-inbound-port" flag: "0" is out of range 1-65535; accepted: a port number 1-65535`},
		{[]string{"--redirect-dns=maybe"}, `invalid argument "maybe" for "--redirect-dns" flag: "maybe" is not a boolean; accepted: true or false`},
		{[]string{"--ip-family-mode", "v4"}, `invalid argument "v4" for "--ip-family-mode" flag: "v4" is not an IP family mode; accepted: dualstack, ipv4 or ipv6`},
		{[]string{"--exclude-outbound-ips", "10.0.0.0/33"}, `invalid argument "10.0.0.0/33" for "--exclude-outbound-ips" flag: "10.0.0.0/33" is not a CIDR; accepted: ` + api.FormCIDRs},
		{[]string{"--exclude-outbound-ports-for-uids", "sctp:1:2"}, `invalid argument "sctp:1:2" for "--exclude-outbound-ports-for-uids" flag: "sctp" in "sctp:1:2" is not a protocol (tcp, udp or *); accepted: ` + api.FormPortsForUIDs},
		{[]string{"--wait", "-1"}, `invalid argument "-1" for "--wait" flag: "-1" is not a whole number; accepted: a whole number 0 or more`},
		{[]string{"--redirect-inbound-port", "15001"}, `--redirect-inbound-port (redirect.inbound.port): "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`},
		{[]string{"--kuma-dp-user", "Kuma DP"}, `--kuma-dp-user (kumaDPUser): "Kuma DP" is not a user name or UID; accepted: ` + api.FormUser},
		{[]string{"--no-such-flag"}, `unknown flag: --no-such-flag`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parse(t, tc.args...)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error\n got: %v\nwant: %s", err, tc.want)
			}
		})
	}
}

func TestConfigFileThenFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tp.yaml")
	doc := "kumaDPUser: kuma-dp\nredirect:\n  dns:\n    enabled: true\n  outbound:\n    excludePortsForUIDs: [\"tcp:22:1000\"]\n"
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := parse(t, "--config", file, "--redirect-dns-port", "16053", "--exclude-outbound-ports-for-uids", "udp:53:106")
	if err != nil {
		t.Fatal(err)
	}
	want := api.DefaultTransparentProxyConfig()
	want.KumaDPUser = "kuma-dp"
	want.Redirect.DNS.Enabled, want.Redirect.DNS.Port = true, 16053
	want.Redirect.Outbound.ExcludePortsForUIDs = api.PortsForUIDsList{
		{Protocol: api.ProtocolUDP, Ports: api.PortRanges{{First: 53, Last: 53}}, UIDs: api.UIDRange{First: 106, Last: 106}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the document, then the flags given:\n got %#v\nwant %#v", got, want)
	}

	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("redirect:\n  inbound:\n    port: http\n"), 0o644)
	_, err = parse(t, "--config", bad)
	wantErr := "--config " + bad + ":\n" + `redirect.inbound.port: "http" is not a port number; accepted: a port number 1-65535`
	if err == nil || err.Error() != wantErr {
		t.Errorf("error\n got: %v\nwant: %s", err, wantErr)
	}
	if _, err := parse(t, "--config", filepath.Join(dir, "missing.yaml")); err == nil || !strings.HasPrefix(err.Error(), "--config: open ") {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzFlags gives the install flags any arguments: they must parse or fail with an error, never
// panic, and what parses must be a valid configuration.
func FuzzFlags(f *testing.F) {
	f.Fuzz(func(t *testing.T, line string) {
		fs := pflag.NewFlagSet("fuzz", pflag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		flags := AddFlags(fs)
		if err := fs.Parse(strings.Fields(line)); err != nil {
			return
		}
		if flags.configFile != "" {
			return // the fuzzer does not get to read files
		}
		cfg, err := flags.Config()
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%q gave an invalid config: %v", line, err)
		}
	})
}

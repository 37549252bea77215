package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/pflag"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/admitted"
)

func parse(t *testing.T, args ...string) (*api.TransparentProxyConfig, error) {
	t.Helper()
	cfg, _, err := parseIn(t, Env{}, args...)
	return cfg, err
}

// parseIn parses the install flags and builds the configuration in env, whose warnings, and the
// flags' deprecation notices, it returns.
func parseIn(t *testing.T, env Env, args ...string) (*api.TransparentProxyConfig, string, error) {
	t.Helper()
	var stderr strings.Builder
	env.Stderr = &stderr
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(&stderr)
	f := AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, stderr.String(), err
	}
	cfg, err := f.Config(t.Context(), env)
	return cfg, stderr.String(), err
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
		{[]string{"--resolv-conf", "/run/systemd/resolve/resolv.conf", "--dry-run", "--ebpf-enabled=false"}, func(c *api.TransparentProxyConfig) {
			c.Redirect.DNS.ResolvConfigPath, c.DryRun = "/run/systemd/resolve/resolv.conf", true
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
		{[]string{"--ebpf-enabled"}, `--ebpf-enabled (ebpf.enabled): "true" asks for Kuma's eBPF mode, which meshinit does not implement; accepted: false: iptables rules`},
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

// TestConfigSources: documents in order, each over the ones before, then the environment, then
// the flags, as kumactl; stdin; kumactl's older --config-file; warnings on stderr.
func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	base := write("base.yaml", "redirect:\n  inbound:\n    port: 16006\n    excludePorts: [22]\n  outbound:\n    port: 16001\n")
	custom := write("custom.yaml", "redirect:\n  inbound:\n    excludePorts: [8080]\nfuture: 1\n")
	env := Env{
		Stdin: strings.NewReader(`{"redirect": {"dns": {"enabled": true, "port": 16053}}}`),
		Environ: []string{"KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_PORT=17001", "KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_PORT=17053",
			"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORT=22", "HOME=/root"},
	}
	got, stderr, err := parseIn(t, env, "--config-file", base, "--config", custom, "--config", "-", "--redirect-dns-port", "18053")
	if err != nil {
		t.Fatal(err)
	}
	want := api.DefaultTransparentProxyConfig()
	want.Redirect.Inbound.Port, want.Redirect.Inbound.ExcludePorts = 16006, api.Ports{8080}
	want.Redirect.Outbound.Port = 17001
	want.Redirect.DNS.Enabled, want.Redirect.DNS.Port = true, 18053
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %#v\nwant %#v", got, want)
	}
	wantStderr := "Flag --config-file has been deprecated, use --config, as kumactl 2.11 and later say\n" +
		"Warning: --config " + custom + ": future is not a field Kuma or meshinit reads; it is ignored\n" +
		"Warning: KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORT is not a variable Kuma or meshinit reads; it is ignored\n"
	if stderr != wantStderr {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, wantStderr)
	}

	// Errors name the variable, or the flag that set the field after it.
	for _, tc := range []struct {
		environ []string
		args    []string
		want    string
	}{
		{[]string{"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=http"}, nil,
			`KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT (redirect.inbound.port): "http" is not a port number; accepted: a port number 1-65535`},
		{[]string{"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=15001"}, nil,
			`KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT (redirect.inbound.port): "15001" is also redirect.outbound.port; accepted: a port no other redirect uses`},
		{[]string{"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=16001"}, []string{"--redirect-outbound-port", "16001"},
			`KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT (redirect.inbound.port): "16001" is also redirect.outbound.port; accepted: a port no other redirect uses`},
		// A conflict the flag resolves is none.
		{[]string{"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=15001"}, []string{"--redirect-outbound-port", "16001"}, ""},
	} {
		_, _, err := parseIn(t, Env{Environ: tc.environ}, tc.args...)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("%q %q: error\n got: %v\nwant: %s", tc.environ, tc.args, err, tc.want)
		}
	}

	// Only regular files, bounded, or stdin: a FIFO must not hang the install.
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := write("big.yaml", "# "+strings.Repeat("x", api.MaxDocumentSize)+"\n")
	for path, want := range map[string]string{
		fifo: "--config: " + fifo + " is not a regular file",
		big:  fmt.Sprintf("--config: %s is over %d bytes", big, api.MaxDocumentSize),
	} {
		if _, err := parse(t, "--config", path); err == nil || err.Error() != want {
			t.Errorf("--config %s: %v, want %s", path, err, want)
		}
	}
}

// TestStdinHonoursCancel: a document read from a stdin that never ends gives up when the context
// ends, as on SIGTERM.
func TestStdinHonoursCancel(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	defer r.Close()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f := AddFlags(fs)
	if err := fs.Parse([]string{"--config", "-"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(errors.New("terminated"))
	if _, err := f.Config(ctx, Env{Stdin: r}); err == nil || err.Error() != "--config: reading stdin: terminated" {
		t.Errorf("error = %v", err)
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
		if len(flags.configs) > 0 {
			return // the fuzzer does not get to read files
		}
		cfg, err := flags.Config(t.Context(), Env{})
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%q gave an invalid config: %v", line, err)
		}
	})
}

// TestAdmittedDocument: with the digest the injector writes in the environment, the document must
// be the one admitted; without it, any document is read.
func TestAdmittedDocument(t *testing.T) {
	dir := t.TempDir()
	admittedDoc, rewritten := filepath.Join(dir, "admitted.yaml"), filepath.Join(dir, "rewritten.yaml")
	doc := []byte(`{"kumaDPUser":"5678"}`)
	forged := []byte(`{"kumaDPUser":"5678","redirect":{"inbound":{"enabled":false}}}`)
	for path, data := range map[string][]byte{admittedDoc: doc, rewritten: forged} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sealed := Env{Environ: []string{admitted.Env + "=" + admitted.Digest(doc)}}
	if _, _, err := parseIn(t, sealed, "--config", admittedDoc); err != nil {
		t.Errorf("the admitted document: %v", err)
	}
	_, _, err := parseIn(t, sealed, "--config", rewritten)
	want := "--config " + rewritten + ": " + (&admitted.MismatchError{Got: admitted.Digest(forged), Want: admitted.Digest(doc)}).Error()
	if err == nil || err.Error() != want {
		t.Errorf("a rewritten document: %v, want %s", err, want)
	}
	if cfg, _, err := parseIn(t, Env{}, "--config", rewritten); err != nil || cfg.Redirect.Inbound.Enabled {
		t.Errorf("without a digest, the document is read as it is: %+v, %v", cfg, err)
	}
}

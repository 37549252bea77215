package api

import (
	"testing"
	"time"
)

func TestParseSwitchAndBool(t *testing.T) {
	for _, tc := range []struct {
		in      string
		parse   func(string) (bool, error)
		want    bool
		wantErr string
	}{
		{in: "enabled", parse: ParseSwitch, want: true},
		{in: "true", parse: ParseSwitch, want: true},
		{in: "disabled", parse: ParseSwitch, want: false},
		{in: "false", parse: ParseSwitch, want: false},
		{in: "Enabled", parse: ParseSwitch, wantErr: `"Enabled" is not a switch value; accepted: ` + FormSwitch},
		{in: "yes", parse: ParseSwitch, want: true}, // Kuma's, deprecated
		{in: "no", parse: ParseSwitch, want: false},
		{in: "yes", parse: ParseBool, want: true},
		{in: "no", parse: ParseBool, want: false},
		{in: "yes", parse: ParseStrictBool, wantErr: `"yes" is not a boolean; accepted: ` + FormBool},
		{in: "", parse: ParseSwitch, wantErr: `is not a switch value; accepted: ` + FormSwitch},
		{in: "true", parse: ParseBool, want: true},
		{in: "false", parse: ParseBool, want: false},
		{in: "enabled", parse: ParseBool, wantErr: `"enabled" is not a boolean; accepted: ` + FormBool},
		{in: "1", parse: ParseBool, wantErr: `"1" is not a boolean; accepted: ` + FormBool},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := tc.parse(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestParseIPFamilyMode(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    IPFamilyMode
		v4, v6  bool
		wantErr string
	}{
		{in: "dualstack", want: IPFamilyDualStack, v4: true, v6: true},
		{in: "ipv4", want: IPFamilyIPv4, v4: true},
		{in: "ipv6", want: IPFamilyIPv6, v6: true},
		{in: "IPv4", want: IPFamilyIPv4, v4: true}, // Kuma reads any case
		{in: "", want: IPFamilyDualStack, v4: true, v6: true},
		{in: "dual-stack", wantErr: `"dual-stack" is not an IP family mode; accepted: ` + FormIPFamilyMode},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseIPFamilyMode(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
			if err == nil && (got.IPv4() != tc.v4 || got.IPv6() != tc.v6) {
				t.Errorf("IPv4()=%v IPv6()=%v, want %v %v", got.IPv4(), got.IPv6(), tc.v4, tc.v6)
			}
		})
	}
}

func TestParseBackend(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Backend
		wantErr string
	}{
		{in: "auto", want: BackendAuto},
		{in: "", want: BackendAuto},
		{in: " nftables ", want: BackendNFTables},
		{in: "iptables", want: BackendIPTables},
		{in: "nft", wantErr: `"nft" is not a transparent-proxy backend; accepted: ` + FormBackend},
		{in: "IPTables", wantErr: `"IPTables" is not a transparent-proxy backend; accepted: ` + FormBackend},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBackend(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
	c := DefaultTransparentProxyConfig()
	if c.Backend() != BackendAuto {
		t.Errorf("default backend %q", c.Backend())
	}
	c.SetBackend(BackendAuto)
	if c.Meshinit.Backend != "" {
		t.Errorf("auto is written as %q; documents that do not choose must stay as they were", c.Meshinit.Backend)
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "30s", want: 30 * time.Second},
		{in: "1m30s", want: 90 * time.Second},
		{in: "0s", want: 0},
		{in: "30", wantErr: `"30" is not a duration; accepted: ` + FormDuration},
		{in: "-5s", wantErr: `"-5s" is negative; accepted: ` + FormDuration},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestParseEnvVars(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    EnvVars
		wantErr string
	}{
		{in: "", want: EnvVars{}},
		{in: "A=1", want: EnvVars{{"A", "1"}}},
		{in: "A=1;B=two", want: EnvVars{{"A", "1"}, {"B", "two"}}},
		{in: "OPTS=-Dx=y;EMPTY=", want: EnvVars{{"OPTS", "-Dx=y"}, {"EMPTY", ""}}},
		{in: "my.env-name=x", want: EnvVars{{"my.env-name", "x"}}},
		{in: "A=1;", want: EnvVars{{"A", "1"}}},
		{in: "A", wantErr: `"A" has no '='; accepted: ` + FormEnvVars},
		{in: "A=1;B", wantErr: `"B" in "A=1;B" has no '='; accepted: ` + FormEnvVars},
		{in: "1A=x", wantErr: `"1A" in "1A=x" is not an environment variable name (letters, digits, '_', '-', '.'; not starting with a digit); accepted: ` + FormEnvVars},
		{in: "=x", wantErr: `"=x" is not an environment variable name (letters, digits, '_', '-', '.'; not starting with a digit); accepted: ` + FormEnvVars},
		{in: "A=1;B=2;A=3", want: EnvVars{{"A", "3"}, {"B", "2"}}}, // the last wins, as in Kuma
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseEnvVars(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestParseServices(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Services
		wantErr string
	}{
		{in: "", want: Services{}},
		{in: "redis_kuma-demo_svc_6379", want: Services{"redis_kuma-demo_svc_6379"}},
		{in: "redis_kuma-demo_svc_6379, elastic_kuma-demo_svc_9200", want: Services{"redis_kuma-demo_svc_6379", "elastic_kuma-demo_svc_9200"}},
		{in: "a,,b", want: Services{"a", "b"}},
		{in: "redis svc", wantErr: `"redis svc" has ' ', which a kuma.io/service value cannot hold (letters, digits, '.', '_', '-', ':', '/'); accepted: ` + FormServices},
		{in: "a,*", wantErr: `"*" in "a,*" has '*', which a kuma.io/service value cannot hold (letters, digits, '.', '_', '-', ':', '/'); accepted: ` + FormServices},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseServices(tc.in)
			checkParse(t, got, err, tc.want, tc.wantErr)
		})
	}
}

func TestParseMeshName(t *testing.T) {
	if got, err := ParseMeshName("default"); err != nil || got != "default" {
		t.Errorf("ParseMeshName(default) = %q, %v", got, err)
	}
	_, err := ParseMeshName("My_Mesh")
	want := `"My_Mesh" is not a mesh name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit); accepted: ` + FormMeshName
	if err == nil || err.Error() != want {
		t.Errorf("ParseMeshName(My_Mesh) error\n got: %v\nwant: %s", err, want)
	}
}

package api

import (
	"reflect"
	"slices"
	"testing"
)

// TestEnvNamesAreKumas holds the variables' names to those Kuma's kumactl reads (its envconfig
// names, in pkg/transparentproxy/config), all of them.
func TestEnvNamesAreKumas(t *testing.T) {
	kumas := []string{
		"KUMA_TRANSPARENT_PROXY_KUMA_DP_USER", "KUMA_TRANSPARENT_PROXY_IP_FAMILY_MODE",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_ENABLED", "KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_ENABLED",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT", "KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_PORT",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_INCLUDE_PORTS", "KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_INCLUDE_PORTS",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORTS", "KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_EXCLUDE_PORTS",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORTS_FOR_UIDS", "KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_EXCLUDE_PORTS_FOR_UIDS",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORTS_FOR_IPS", "KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_EXCLUDE_PORTS_FOR_IPS",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_INSERT_REDIRECT_INSTEAD_OF_APPEND",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_INSERT_REDIRECT_INSTEAD_OF_APPEND",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_ENABLED", "KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_PORT",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_CAPTURE_ALL", "KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_SKIP_CONNTRACK_ZONE_SPLIT",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_RESOLV_CONFIG_PATH", "KUMA_TRANSPARENT_PROXY_REDIRECT_VNET_NETWORKS",
		"KUMA_TRANSPARENT_PROXY_DROP_INVALID_PACKETS", "KUMA_TRANSPARENT_PROXY_VERBOSE",
		"KUMA_TRANSPARENT_PROXY_DRY_RUN", "KUMA_TRANSPARENT_PROXY_LOG_ENABLED",
		"KUMA_TRANSPARENT_PROXY_LOG_LEVEL", "KUMA_TRANSPARENT_PROXY_WAIT",
		"KUMA_TRANSPARENT_PROXY_WAIT_INTERVAL", "KUMA_TRANSPARENT_PROXY_RETRY_MAX_RETRIES",
		"KUMA_TRANSPARENT_PROXY_RETRY_SLEEP_BETWEEN_RETRIES", "KUMA_TRANSPARENT_PROXY_STORE_FIREWALLD",
		"KUMA_TRANSPARENT_PROXY_IPTABLES_EXECUTABLES", "KUMA_TRANSPARENT_PROXY_COMMENTS_DISABLED",
		"KUMA_TRANSPARENT_PROXY_CNI_MODE", "KUMA_TRANSPARENT_PROXY_EBPF_ENABLED",
	}
	var ours []string
	for name := range EnvNames {
		ours = append(ours, name)
	}
	slices.Sort(ours)
	slices.Sort(kumas)
	if !reflect.DeepEqual(ours, kumas) {
		t.Errorf("names:\n%q\nKuma's:\n%q", ours, kumas)
	}
}

func TestApplyEnv(t *testing.T) {
	c := DefaultTransparentProxyConfig()
	given, unknown, err := c.ApplyEnv([]string{
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORTS=22,80",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_ENABLED=true",
		"KUMA_TRANSPARENT_PROXY_RETRY_SLEEP_BETWEEN_RETRIES=1s",
		"KUMA_TRANSPARENT_PROXY_KUMA_DP_USER=kuma-dp",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORT=22", // a typo
		"HOME=/root",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultTransparentProxyConfig()
	want.Redirect.Inbound.ExcludePorts = Ports{22, 80}
	want.Redirect.DNS.Enabled = true
	want.Retry.SleepBetweenRetries = Duration(1e9)
	want.KumaDPUser = "kuma-dp"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %#v\nwant %#v", c, want)
	}
	if w := []string{"kumaDPUser", "redirect.dns.enabled", "redirect.inbound.excludePorts", "retry.sleepBetweenRetries"}; !reflect.DeepEqual(given, w) {
		t.Errorf("given = %q, want %q", given, w)
	}
	if w := []string{"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDE_PORT"}; !reflect.DeepEqual(unknown, w) {
		t.Errorf("unknown = %q, want %q", unknown, w)
	}
	_, _, err = DefaultTransparentProxyConfig().ApplyEnv([]string{"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=http"})
	if want := `KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT (redirect.inbound.port): "http" is not a port number; accepted: a port number 1-65535`; err == nil || err.Error() != want {
		t.Errorf("error\n got %v\nwant %s", err, want)
	}
}

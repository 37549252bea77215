package kumacontract

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshinit/meshinit/api"
)

// TestMeshinitReadsWhatKumaWrites reads documents as Kuma's injector, Kuma's chart and Kuma's
// users write them with meshinit's reader, and checks what it makes of them.
func TestMeshinitReadsWhatKumaWrites(t *testing.T) {
	for name, check := range map[string]func(t *testing.T, c *api.TransparentProxyConfig){
		"injector-2.14.yaml": func(t *testing.T, c *api.TransparentProxyConfig) {
			if !c.Redirect.DNS.CaptureAll || c.InboundExcluded().String() != "9902,9001" || c.Retry.SleepBetweenRetries.String() != "2s" {
				t.Errorf("read as %+v", c)
			}
		},
		"helm-configmap-2.14.yaml": func(t *testing.T, c *api.TransparentProxyConfig) {
			if !c.Redirect.DNS.Enabled || c.EBPF.Enabled || c.Log.Level != 7 {
				t.Errorf("read as %+v", c)
			}
		},
		"every-field.yaml": func(t *testing.T, c *api.TransparentProxyConfig) {
			in, out := c.Redirect.Inbound, c.Redirect.Outbound
			switch {
			case c.Family() != api.IPFamilyIPv4, in.Port != 16006, in.IncludePorts.String() != "8080,8443",
				c.InboundExcluded().String() != "22,9000,9001", in.ExcludePortsForIPs.String() != "10.0.0.0/8,192.168.0.1,192.168.0.2",
				!in.InsertRedirectInsteadOfAppend, out.ExcludePortsForUIDs.String() != "tcp:22:1000-2000;53:106;107",
				c.Redirect.VNet.Networks.String() != "docker0:172.17.0.0/16,br+:172.18.0.0/16", c.Log.Level != 4,
				!c.Comments.Disabled, c.Retry.SleepBetweenRetries.String() != "500ms", len(c.IPTablesExecutables) != 3:
				t.Errorf("read as %+v", c)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ReadDocument(string(data)); err != nil {
				t.Fatalf("not a document Kuma's readers take, so not one to hold meshinit to: %v", err)
			}
			doc, err := api.ReadTransparentProxyConfig(data, api.DefaultTransparentProxyConfig())
			if err != nil {
				t.Fatalf("meshinit refuses a document Kuma writes: %v", err)
			}
			// The listeners kuma-dp opens for the document are where meshinit's rules redirect.
			view, err := ReadAsDataplane(string(data))
			if err != nil {
				t.Fatal(err)
			}
			if r := doc.Config.Redirect; uint16(view.InboundPort) != r.Inbound.Port || uint16(view.OutboundPort) != r.Outbound.Port ||
				view.DNSEnabled != r.DNS.Enabled || uint16(view.DNSPort) != r.DNS.Port {
				t.Errorf("kuma-dp would listen on %+v, meshinit's rules redirect to %+v", view, r)
			}
			if len(doc.Warnings) > 0 {
				t.Errorf("warnings about a document of Kuma's: %q", doc.Warnings)
			}
			check(t, doc.Config)
		})
	}
}

// TestReaderRefusesWhatKumaRefuses holds this package's reader to Kuma's rules, so that the
// tests above could fail: Kuma refuses these.
func TestReaderRefusesWhatKumaRefuses(t *testing.T) {
	for _, doc := range []string{
		`redirect: {inbound: {port: "15006"}}`,
		`redirect: {dns: {port: 0}}`,
		`redirect: {inbound: {excludePorts: ["8000-8100"]}}`,
		`ipFamilyMode: ipv6`,
		`redirect: {outbound: {excludePortsForUIDs: ["tcp:22:70000"]}}`,
		`redirect: {outbound: {excludePortsForIPs: [""]}}`,
	} {
		if _, err := ReadDocument(doc); err == nil {
			t.Errorf("%s: accepted", doc)
		}
	}
	for _, annotations := range []map[string]string{
		{"kuma.io/transparent-proxying": "enabled"},
		{"kuma.io/transparent-proxying": "enabled", "kuma.io/transparent-proxying-inbound-port": "15006",
			"kuma.io/transparent-proxying-outbound-port": "15001", "kuma.io/transparent-proxying-ip-family-mode": "ipv6"},
		{"kuma.io/gateway": "true"},
	} {
		if err := ConvertPod(annotations); err == nil {
			t.Errorf("%v: converted", annotations)
		}
	}
}

package initcontainer

import (
	"context"
	"testing"
	"time"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/prereq"
)

// BenchmarkValidate times a validation of the default configuration (both families) in a pod
// namespace with default routes, as the validation container runs it: as the proxy, Kuma's layout
// (its own connections out proven left alone, which waits exemptionWait per family for a
// connection that goes nowhere, and inbound through the hairpin), and as root, which may act as
// the proxy (outbound captured, inbound as the proxy).
func BenchmarkValidate(b *testing.B) {
	prereq.Root(b)
	net := netkit.New(b)
	cfg := api.DefaultTransparentProxyConfig()
	for _, tc := range []struct {
		name string
		host Host
	}{{"as the proxy", Host{ProxyUID: 0}}, {"as root for the proxy", testHost}} {
		b.Run(tc.name, func(b *testing.B) {
			if err := net.Pod.Do(func() error {
				_, err := (&Installer{Backend: &Backend{Name: "nft"}}).Install(context.Background(), cfg, tc.host)
				return err
			}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := net.Pod.Do(func() error { _, err := Validate(cfg, tc.host, time.Second); return err }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

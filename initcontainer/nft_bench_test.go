package initcontainer

import (
	"context"
	"testing"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/test/netkit"
)

// BenchmarkNFTInstall times the nftables install alone, in process, each in a fresh network
// namespace: what kuma-init spends beyond its start, for profiles (-cpuprofile, -memprofile).
func BenchmarkNFTInstall(b *testing.B) {
	cfg := nftConfig(api.DefaultTransparentProxyConfig())
	cfg.Redirect.DNS.Enabled, cfg.Redirect.DNS.CaptureAll = true, true
	cfg.SetInboundExcluded(mustParse(api.ParsePortRanges("22")))
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ns := netkit.NewBare(b)
		b.StartTimer()
		if err := ns.Do(func() error {
			_, err := (&Installer{Backend: &NFTablesBackend}).Install(context.Background(), cfg, testHost)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		ns.Delete(b)
		b.StartTimer()
	}
}

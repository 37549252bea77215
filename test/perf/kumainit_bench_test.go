// Package perf measures the product's costs side by side with a reference in the same run, since
// absolute times are not comparable across machines or runs.
package perf

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/prereq"
)

// installArgs is the configuration measured: the defaults plus DNS and an excluded SSH port.
var installArgs = []string{"--redirect-dns", "--exclude-inbound-ports", "22"}

// BenchmarkKumaInitInstall runs, in turn and in fresh network namespaces, a bare iptables-restore
// --noflush of kuma-init's rules (IPv4 then IPv6), the floor of any iptables tool; the whole
// kuma-init install with each backend, iptables and nftables; and kuma-init --version, a start of
// the same process that installs nothing. Each is started the same way, from a thread inside its
// namespace. It reports each one's mean time and the ratios to the bare restores, the figures that
// matter.
func BenchmarkKumaInitInstall(b *testing.B) {
	prereq.Root(b)
	kumaInit := binaries.Build(b, "kuma-init")
	dir := b.TempDir()
	v4, v6 := dryRunScripts(b, kumaInit, dir)
	restore4, restore6 := prereq.Binary(b, "iptables-nft-restore"), prereq.Binary(b, "ip6tables-nft-restore")

	var bare, ipt, nft, start time.Duration
	for b.Loop() {
		b.StopTimer()
		nsBare, nsIPT, nsNFT, nsStart := netkit.NewBare(b), netkit.NewBare(b), netkit.NewBare(b), netkit.NewBare(b)
		b.StartTimer()
		bare += timed(b, nsBare, exec.Command(restore4, "--noflush"), v4)
		bare += timed(b, nsBare, exec.Command(restore6, "--noflush"), v6)
		ipt += timed(b, nsIPT, exec.Command(kumaInit, append(installArgs, "--backend", "iptables")...), "")
		nft += timed(b, nsNFT, exec.Command(kumaInit, append(installArgs, "--backend", "nftables")...), "")
		start += timed(b, nsStart, exec.Command(kumaInit, "--version"), "")
		b.StopTimer()
		for _, ns := range []*netkit.Namespace{nsBare, nsIPT, nsNFT, nsStart} {
			ns.Delete(b)
		}
		b.StartTimer()
	}
	n := float64(b.N)
	for name, d := range map[string]time.Duration{"bare": bare, "iptables": ipt, "nftables": nft, "start": start} {
		b.ReportMetric(float64(d.Microseconds())/n, name+"-us/op")
	}
	b.ReportMetric(float64(ipt)/float64(bare), "iptables-x-bare")
	b.ReportMetric(float64(nft)/float64(bare), "nftables-x-bare")
	b.ReportMetric(float64(start)/float64(bare), "start-x-bare")
}

// timed runs cmd inside ns with stdin from the file at path (none when empty) and returns how long
// it took.
func timed(b *testing.B, ns *netkit.Namespace, cmd *exec.Cmd, stdin string) time.Duration {
	b.Helper()
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	var took time.Duration
	if err := ns.Do(func() error {
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took = time.Since(start)
		if err != nil {
			b.Errorf("%s: %v\n%s", cmd, err, out)
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	return took
}

// dryRunScripts writes kuma-init's restore scripts for installArgs, one file per family.
func dryRunScripts(b *testing.B, kumaInit, dir string) (v4, v6 string) {
	b.Helper()
	out, err := exec.Command(kumaInit, append(installArgs, "--dry-run", "--backend", "iptables")...).Output()
	if err != nil {
		b.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(out), "\n")
	scripts := strings.SplitN(rest, "# ipv6:", 2)
	_, ipv6, _ := strings.Cut(scripts[1], "\n")
	v4, v6 = filepath.Join(dir, "v4.rules"), filepath.Join(dir, "v6.rules")
	for path, text := range map[string]string{v4: scripts[0], v6: ipv6} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return v4, v6
}

// Package transparentproxy tests the shipped kuma-init and meshinit binaries end to end, in
// network namespaces, as an operator or a pod runs them.
package transparentproxy

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/prereq"
)

// run runs a binary inside ns and returns its stdout, stderr and exit code.
func run(t *testing.T, ns *netkit.Namespace, bin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, bin}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func mustRun(t *testing.T, ns *netkit.Namespace, bin string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, ns, bin, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s%s", filepath.Base(bin), strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func setup(t *testing.T) (*netkit.Net, string, string, string) {
	t.Helper()
	prereq.Root(t)
	prereq.Binary(t, "iptables-nft-restore")
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	net := netkit.New(t)
	// The remote namespace plays the nameserver.
	os.WriteFile(resolv, []byte("nameserver "+net.Remote.IPv4.String()+"\nnameserver "+net.Remote.IPv6.String()+"\n"), 0o644)
	return net, binaries.Build(t, "kuma-init"), binaries.Build(t, "meshinit"), resolv
}

func TestKumaInitInstallsRerunsAndValidates(t *testing.T) {
	net, kumaInit, meshinit, resolv := setup(t)
	args := []string{"--redirect-dns", "--exclude-inbound-ports", "22", "--resolv-conf", resolv}

	out := mustRun(t, net.Pod, kumaInit, append(args, "--verify")...)
	for _, want := range []string{
		"ipv4: installed with iptables-nft: 6 chains, 21 rules\n",
		"ipv6: installed with iptables-nft: 6 chains, 21 rules\n",
		"ipv6: added ::6/128 to lo, the source of the proxy's inbound passthrough\n",
		"validate: ipv4 outbound: 192.0.2.1:9 captured\n",
		"validate: ipv6 dns: [fd00:200::2]:53 captured\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("kuma-init output lacks %q:\n%s", want, out)
		}
	}
	before := net.Pod.Rules(t, "nft")
	out = mustRun(t, net.Pod, kumaInit, args...)
	if !strings.Contains(out, "ipv4: already installed with iptables-nft, nothing changed") || net.Pod.Rules(t, "nft") != before {
		t.Errorf("a re-run changed something:\n%s", out)
	}
	if out := mustRun(t, net.Pod, kumaInit, append([]string{"validate"}, args...)...); strings.Count(out, "captured") != 6 {
		t.Errorf("validate:\n%s", out)
	}

	out = mustRun(t, net.Pod, meshinit, "uninstall", "transparent-proxy", "-o", "json")
	var report struct {
		Families []struct {
			Family  string
			Removed int
		}
		PassthroughAddress string
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Families) != 2 || report.Families[0].Removed != 21 ||
		report.PassthroughAddress != "removed ::6/128 from lo" {
		t.Errorf("uninstall report %s: %+v %v", out, report, err)
	}
	if got := net.Pod.Rules(t, "nft"); strings.Contains(got, "meshinit") || strings.Contains(got, "KUMA_MESH") {
		t.Errorf("rules left after uninstall:\n%s", got)
	}
	if _, errOut, code := run(t, net.Pod, kumaInit, append([]string{"validate", "--timeout", "200ms"}, args...)...); code != 1 ||
		!strings.Contains(errOut, "capture could not be proven") {
		t.Errorf("validate without rules: exit %d\n%s", code, errOut)
	}
}

func TestBadInputTouchesNothing(t *testing.T) {
	net, kumaInit, meshinit, resolv := setup(t)
	mustRun(t, net.Pod, kumaInit, "--resolv-conf", resolv)
	before := net.Pod.Rules(t, "nft")
	for _, tc := range []struct {
		bin  string
		args []string
		want string
	}{
		{kumaInit, []string{"--exclude-outbound-ports", "1-2-3"}, `Error: invalid argument "1-2-3" for "--exclude-outbound-ports" flag: "1-2-3" is not a port number`},
		{kumaInit, []string{"--kuma-dp-user", "no-such-user"}, `Error: --kuma-dp-user: "no-such-user" is not a user on this host`},
		{kumaInit, []string{"--redirect-all-dns-traffic=false", "--redirect-dns-port", "15001", "--redirect-dns"}, `Error: --redirect-dns-port (redirect.dns.port): "15001" is also redirect.outbound.port`},
		{kumaInit, []string{"--config", "/nonexistent.yaml"}, "Error: --config: open /nonexistent.yaml: no such file or directory"},
		{kumaInit, []string{"--redirect-dns", "--resolv-conf", "/nonexistent"}, `Error: --resolv-conf: "/nonexistent" cannot be read: open /nonexistent: no such file or directory`},
		{meshinit, []string{"install", "transparent-proxy", "--ip-family-mode", "both"}, `Error: invalid argument "both" for "--ip-family-mode" flag: "both" is not an IP family mode; accepted: dualstack, ipv4 or ipv6`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, code := run(t, net.Pod, tc.bin, tc.args...)
			if code == 0 || !strings.HasPrefix(errOut, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant it to start with:\n%s", code, errOut, tc.want)
			}
			if after := net.Pod.Rules(t, "nft"); after != before {
				t.Errorf("bad input changed the rules:\n%s", after)
			}
		})
	}
}

func TestUniversalHostWithFirewalld(t *testing.T) {
	net, _, meshinit, resolv := setup(t)
	direct := filepath.Join(t.TempDir(), "direct.xml")
	// nobody exists on every Debian host: a user by name, as universal mode uses kuma-dp.
	out := mustRun(t, net.Pod, meshinit, "install", "transparent-proxy", "--kuma-dp-user", "nobody", "--redirect-dns",
		"--exclude-inbound-ports", "22", "--store-firewalld", "--firewalld-direct-xml", direct, "--resolv-conf", resolv)
	if !strings.Contains(out, "firewalld: stored the rules in "+direct) {
		t.Errorf("install output:\n%s", out)
	}
	if got := net.Pod.Rules(t, "nft"); !strings.Contains(got, "--uid-owner 65534") {
		t.Errorf("the rules do not exempt nobody's UID:\n%s", got)
	}
	xml, err := os.ReadFile(direct)
	if err != nil || !strings.Contains(string(xml), `chain="KUMA_MESH_OUTBOUND"`) || !strings.Contains(string(xml), `ipv="ipv6"`) {
		t.Errorf("direct.xml: %v\n%s", err, xml)
	}
	out = mustRun(t, net.Pod, meshinit, "uninstall", "transparent-proxy", "--firewalld-direct-xml", direct)
	if !strings.Contains(out, "firewalld: removed") {
		t.Errorf("uninstall output:\n%s", out)
	}
	if _, err := os.Stat(direct); !os.IsNotExist(err) {
		t.Errorf("direct.xml of ours alone was not removed: %v", err)
	}
}

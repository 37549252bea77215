package transparentproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshinit/meshinit/test/netkit"
)

// kumactl is kuma-init under the name the image links it as, /usr/bin/kumactl, where Kuma's
// injector runs it.
func kumactl(t *testing.T, kumaInit string) string {
	t.Helper()
	link := filepath.Join(t.TempDir(), "kumactl")
	if err := os.Symlink(kumaInit, link); err != nil {
		t.Fatal(err)
	}
	return link
}

// runIn is run with extra environment and stdin.
func runIn(t *testing.T, ns *netkit.Namespace, env []string, stdin string, bin string, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr strings.Builder
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		exitErr, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = exitErr.ExitCode()
	}
	return stdout.String(), stderr.String(), code
}

// TestKumactlCommandLines runs kuma-init as Kuma's injectors run kumactl in its image: the
// install with the projected document (--config, and --config-file before Kuma 2.11), the CNI
// mode's validator in both of its forms, and uninstall.
func TestKumactlCommandLines(t *testing.T) {
	net, kumaInit, _, resolv := setup(t)
	kumactl := kumactl(t, kumaInit)
	config := filepath.Join(t.TempDir(), "config.yaml")
	doc := "kumaDPUser: \"5678\"\nredirect:\n  dns:\n    enabled: true\n    resolvConfigPath: " + resolv + "\n  inbound:\n    excludePorts: [22]\n"
	if err := os.WriteFile(config, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, net.Pod, kumactl, "install", "transparent-proxy", "--config="+config)
	if !strings.Contains(out, "ipv4: installed with iptables-nft: 6 chains, 21 rules\n") {
		t.Errorf("kumactl install transparent-proxy --config:\n%s", out)
	}
	installed := net.Pod.Rules(t, "nft")
	out, errOut, code := run(t, net.Pod, kumactl, "install", "transparent-proxy", "--config-file="+config)
	if code != 0 || !strings.Contains(out, "ipv4: already installed with iptables-nft, nothing changed") ||
		errOut != "Flag --config-file has been deprecated, use --config, as kumactl 2.11 and later say\n" || net.Pod.Rules(t, "nft") != installed {
		t.Errorf("kumactl install transparent-proxy --config-file: exit %d\n%s%s", code, out, errOut)
	}

	for _, args := range [][]string{
		{"--config-file=/tmp/.kumactl", "--transparent-proxy-config=" + config},
		{"--config-file", "/tmp/.kumactl", "--ip-family-mode", "dualstack", "--validation-server-port", "15006"},
	} {
		out := mustRun(t, net.Pod, kumactl, append([]string{"install", "transparent-proxy-validator"}, args...)...)
		if !strings.Contains(out, "ipv4 inbound: 10.200.0.1:10000 captured\n") || !strings.Contains(out, "ipv6 inbound: [fd00:200::1]:10000 captured\n") {
			t.Errorf("kumactl install transparent-proxy-validator %s:\n%s", strings.Join(args, " "), out)
		}
	}
	if _, errOut, code := run(t, net.Pod, kumactl, "install", "transparent-proxy-validator", "--validation-server-port=16006", "--timeout=200ms"); code != 1 ||
		!strings.Contains(errOut, "Error: capture could not be proven") {
		t.Errorf("validating another port: exit %d\n%s", code, errOut)
	}

	out = mustRun(t, net.Pod, kumactl, "uninstall", "transparent-proxy", "--dry-run")
	if !strings.HasPrefix(out, "# ipv4: iptables-nft-restore --noflush\n*raw\n") || !strings.Contains(out, "-X KUMA_MESH_OUTBOUND\n") ||
		net.Pod.Rules(t, "nft") != installed {
		t.Errorf("kumactl uninstall transparent-proxy --dry-run:\n%s", out)
	}
	out = mustRun(t, net.Pod, kumactl, "uninstall", "transparent-proxy", "--verbose", "--ebpf-enabled=false", "--ebpf-bpffs-path=/run/kuma/bpf")
	if !strings.Contains(out, "ipv4: removed 21 rules and our chains with iptables-nft\n") || strings.Contains(net.Pod.Rules(t, "nft"), "KUMA_MESH") {
		t.Errorf("kumactl uninstall transparent-proxy:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"uninstall", "transparent-proxy", "--ebpf-enabled"}, `Error: --ebpf-enabled (ebpf.enabled): "true" asks for Kuma's eBPF mode, which meshinit does not implement; accepted: false: iptables rules` + "\n"},
		{[]string{"uninstall", "transparent-proxy", "--redirect-dns"}, "Error: unknown flag: --redirect-dns\nRun 'kumactl uninstall transparent-proxy --help' for usage.\n"},
	} {
		if _, errOut, code := run(t, net.Pod, kumactl, tc.args...); code != 1 || errOut != tc.want {
			t.Errorf("kumactl %s: exit %d\n%s\nwant\n%s", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}

// TestEnvironmentAndStdin: documents on stdin and from files, the KUMA_TRANSPARENT_PROXY_*
// environment over them, the flags over it; rules without comments installed, re-run and removed.
func TestEnvironmentAndStdin(t *testing.T) {
	net, kumaInit, meshinit, resolv := setup(t)
	env := []string{"KUMA_TRANSPARENT_PROXY_REDIRECT_DNS_RESOLV_CONFIG_PATH=" + resolv, "KUMA_TRANSPARENT_PROXY_COMMENTS_DISABLED=true",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=16006", "KUMA_TRANSPARENT_PROXY_REDIRECT_OUTBOUND_PORT=16001",
		"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDED_PORTS=22"}
	doc := `{"redirect": {"dns": {"enabled": true}, "inbound": {"port": 17006}}}`
	out, errOut, code := runIn(t, net.Pod, env, doc, kumaInit, "--config", "-", "--redirect-outbound-port", "17001")
	rules := net.Pod.Rules(t, "nft")
	if code != 0 || errOut != "Warning: KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_EXCLUDED_PORTS is not a variable Kuma or meshinit reads; it is ignored\n" ||
		!strings.Contains(rules, "--to-ports 16006") || !strings.Contains(rules, "--to-ports 17001") || !strings.Contains(rules, "--to-ports 15053") ||
		strings.Contains(rules, "--comment") {
		t.Fatalf("exit %d\n%s%s\n%s", code, out, errOut, rules)
	}
	if out, errOut, code := runIn(t, net.Pod, env, doc, kumaInit, "--config", "-", "--redirect-outbound-port", "17001"); code != 0 ||
		!strings.Contains(out, "nothing changed") || net.Pod.Rules(t, "nft") != rules {
		t.Errorf("re-run without comments: exit %d\n%s%s", code, out, errOut)
	}
	if out := mustRun(t, net.Pod, meshinit, "uninstall", "transparent-proxy"); !strings.Contains(out, "ipv6: removed") ||
		strings.Contains(net.Pod.Rules(t, "nft"), "KUMA_MESH") {
		t.Errorf("uninstall of rules without comments:\n%s\n%s", out, net.Pod.Rules(t, "nft"))
	}
	_, errOut, code = runIn(t, net.Pod, []string{"KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT=0"}, "", kumaInit)
	if want := `Error: KUMA_TRANSPARENT_PROXY_REDIRECT_INBOUND_PORT (redirect.inbound.port): "0" is out of range 1-65535; accepted: a port number 1-65535` + "\n"; code != 1 || errOut != want {
		t.Errorf("a bad variable: exit %d\n%s", code, errOut)
	}
}

package cli

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
)

func program(ran *string) Program {
	cmd := func(name string) func() *Command {
		return func() *Command {
			c, _ := newCommand(name, "the "+name+" command")
			extra := c.Flags.Bool("extra", false, "")
			c.Run = func(context.Context, Env) error {
				*ran = name
				if *extra {
					return io.ErrUnexpectedEOF
				}
				return nil
			}
			return c
		}
	}
	return Program{Name: "prog", Version: "v9", Default: cmd("install"), Commands: map[string]func() *Command{"validate": cmd("validate"),
		"install transparent-proxy": cmd("install transparent-proxy"), "install transparent-proxy-validator": cmd("install transparent-proxy-validator")}}
}

func TestProgramMain(t *testing.T) {
	for _, tc := range []struct {
		args        []string
		code        int
		ran         string
		out, errOut string
	}{
		{args: nil, ran: "install"},
		{args: []string{"--redirect-dns"}, ran: "install"},
		{args: []string{"validate", "--redirect-dns"}, ran: "validate"},
		// kumactl's words, the longest that match.
		{args: []string{"install", "transparent-proxy", "--redirect-dns"}, ran: "install transparent-proxy"},
		{args: []string{"install", "transparent-proxy-validator"}, ran: "install transparent-proxy-validator"},
		{args: []string{"install", "transparent-proxy", "--bogus"}, code: 1,
			errOut: "Error: unknown flag: --bogus\nRun 'prog install transparent-proxy --help' for usage.\n"},
		{args: []string{"install", "control-plane"}, code: 1, errOut: "Error: unexpected argument \"install\"\nRun 'prog --help' for usage.\n"},
		{args: []string{"--version"}, out: "prog v9\n"},
		{args: []string{"--extra"}, code: 1, ran: "install", errOut: "Error: unexpected EOF\n"},
		{args: []string{"extra-arg"}, code: 1, errOut: "Error: unexpected argument \"extra-arg\"\nRun 'prog --help' for usage.\n"},
		{args: []string{"--redirect-dns", "false"}, code: 1,
			errOut: "Error: unexpected argument \"false\": --redirect-dns takes its value after '=', as --redirect-dns=false\nRun 'prog --help' for usage.\n"},
		{args: []string{"--bogus"}, code: 1, errOut: "Error: unknown flag: --bogus\nRun 'prog --help' for usage.\n"},
		{args: []string{"--help"}, out: "the install command\n\nUsage:\n  prog [flags]\n  prog install transparent-proxy [flags]\tthe install transparent-proxy command\n" +
			"  prog install transparent-proxy-validator [flags]\tthe install transparent-proxy-validator command\n  prog validate [flags]\tthe validate command\n\nFlags:\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var ran string
			var out, errOut strings.Builder
			code := program(&ran).Main(context.Background(), tc.args, Env{Stdout: &out, Stderr: &errOut})
			if code != tc.code || ran != tc.ran || !strings.HasPrefix(out.String(), tc.out) || errOut.String() != tc.errOut {
				t.Errorf("code %d ran %q\nstdout %q\nstderr %q", code, ran, out.String(), errOut.String())
			}
		})
	}
}

func TestDryRunPrintsTheGoldenScripts(t *testing.T) {
	// The same configuration as initcontainer's universal-redirect-dns-exclude-ssh golden file,
	// spelt as flags, with that scenario's nameservers.
	var out strings.Builder
	cmd := Install("kuma-init", "")
	if err := cmd.Flags.Parse([]string{"--redirect-dns", "--exclude-inbound-ports", "22", "--dry-run",
		"--resolv-conf", "testdata/resolv.conf"}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Run(context.Background(), Env{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	golden := readFile(t, "../testdata/golden/universal-redirect-dns-exclude-ssh.rules")
	if out.String() != golden {
		t.Errorf("--dry-run printed:\n%s\nwant the golden file:\n%s", out.String(), golden)
	}
	// The same rules in nft's syntax, the nftables backend's.
	out.Reset()
	cmd = Install("kuma-init", "")
	if err := cmd.Flags.Parse([]string{"--redirect-dns", "--exclude-inbound-ports", "22", "--dry-run",
		"--resolv-conf", "testdata/resolv.conf", "--backend", "nftables"}); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Run(context.Background(), Env{Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if golden := readFile(t, "../testdata/golden/universal-redirect-dns-exclude-ssh.nft"); out.String() != golden {
		t.Errorf("--dry-run --backend nftables printed:\n%s\nwant the golden file:\n%s", out.String(), golden)
	}
	for _, c := range []struct {
		backend string
		want    []string
	}{
		{"iptables", []string{`"backend": "iptables"`, `"purpose": "outbound TCP to the sidecar"`, `"table": "nat"`}},
		{"nftables", []string{`"backend": "nftables"`, `"purpose": "outbound TCP to the sidecar"`, `"table": "ip meshinit"`, `"table": "ip6 meshinit"`, `"hook": "prerouting"`}},
	} {
		out.Reset()
		cmd = Install("kuma-init", "")
		cmd.Flags.Parse([]string{"--dry-run", "-o", "json", "--backend", c.backend})
		err := cmd.Run(context.Background(), Env{Stdout: &out})
		for _, w := range c.want {
			if err != nil || !strings.Contains(out.String(), w) {
				t.Errorf("--dry-run -o json --backend %s: %v; want %s in\n%s", c.backend, err, w, out.String())
			}
		}
	}
	out.Reset()
	cmd = Install("kuma-init", "")
	if err := cmd.Flags.Parse([]string{"--backend", "ebpf"}); err == nil || !strings.Contains(err.Error(), "auto, iptables or nftables") {
		t.Errorf("--backend ebpf: %v", err)
	}
	cmd = Install("kuma-init", "")
	cmd.Flags.Parse([]string{"-o", "yaml"})
	if err := cmd.Run(context.Background(), Env{Stdout: &out}); err == nil || err.Error() != `--output: "yaml" is not an output format; accepted: text or json` {
		t.Errorf("-o yaml: %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

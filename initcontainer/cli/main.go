package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Program is a command-line program made of commands, the first being the default, as kuma-init
// is: `prog [flags]` runs the first, `prog <words> [flags]` another. Commands are made only when
// chosen: defining every flag of every command is a measurable part of a short run
// (BenchmarkKumaInitInstall).
type Program struct {
	Name, Version string
	// Commands are the default command's maker, then the others' by the words that choose them,
	// such as "validate" or "install transparent-proxy".
	Default  func() *Command
	Commands map[string]func() *Command
}

// KumaInit is kuma-init, named name: its default command installs the rules. It also answers to
// kumactl's command lines, so that an injector that runs Kuma's kuma-init
// (`/usr/bin/kumactl install transparent-proxy --config=...`, or its validation container's
// `kumactl install transparent-proxy-validator ...`) runs this one unchanged.
func KumaInit(name, version string) Program {
	const (
		install  = "Install the transparent-proxy rules in this network namespace"
		validate = "Prove with real connections that the rules capture traffic"
	)
	return Program{
		Name:    name,
		Version: version,
		Default: func() *Command { return Install(name, install) },
		Commands: map[string]func() *Command{
			"validate": func() *Command { return Validate("validate", validate) },
			// kumactl's spellings.
			"install transparent-proxy": func() *Command { return Install("install transparent-proxy", install) },
			"uninstall transparent-proxy": func() *Command {
				return Uninstall("uninstall transparent-proxy", "Remove every rule and chain of the transparent proxy, and nothing else")
			},
			"install transparent-proxy-validator": func() *Command {
				return Validator("install transparent-proxy-validator", validate+", as kumactl's validator")
			},
		},
	}
}

// Main runs the program on args, printing errors and help the way cobra does, and returns the
// exit code.
func (p Program) Main(ctx context.Context, args []string, env Env) int {
	prog := p.Name
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		fmt.Fprintln(env.Stdout, prog, p.Version)
		return 0
	}
	var cmd *Command
	words := 0
	for name, newCmd := range p.Commands {
		w := strings.Fields(name)
		if len(w) > words && len(args) >= len(w) && slices.Equal(args[:len(w)], w) {
			cmd, words = newCmd(), len(w)
		}
	}
	args = args[words:]
	if cmd == nil {
		cmd = p.Default()
	}
	// Deprecated spellings are reported as they are parsed; help is printed below.
	cmd.Flags.SetOutput(env.Stderr)
	cmd.Flags.Usage = func() {}
	if err := cmd.Flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(env.Stdout, p.usage(cmd))
			return 0
		}
		fmt.Fprintf(env.Stderr, "Error: %v\nRun '%s --help' for usage.\n", err, p.invocation(cmd))
		return 1
	}
	if cmd.Flags.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "Error: unexpected argument %q%s\nRun '%s --help' for usage.\n", cmd.Flags.Arg(0), boolValueHint(cmd.Flags, args), p.invocation(cmd))
		return 1
	}
	if err := cmd.Run(ctx, env); err != nil {
		fmt.Fprintf(env.Stderr, "Error: %v\n", err)
		return 1
	}
	return 0
}

// invocation is how the program runs cmd: its name, and the command's words unless it is the
// default.
func (p Program) invocation(cmd *Command) string {
	if _, other := p.Commands[cmd.Name]; other {
		return p.Name + " " + cmd.Name
	}
	return p.Name
}

// boolValueHint explains an argument that follows a boolean flag: it is the flag's value written
// as for other flags, which a boolean takes only after "=".
func boolValueHint(fs *pflag.FlagSet, args []string) string {
	i := slices.Index(args, fs.Arg(0))
	if i < 1 || !strings.HasPrefix(args[i-1], "--") {
		return ""
	}
	f := fs.Lookup(strings.TrimPrefix(args[i-1], "--"))
	if f == nil || f.NoOptDefVal == "" {
		return ""
	}
	return fmt.Sprintf(": %s takes its value after '=', as %s=%s", args[i-1], args[i-1], fs.Arg(0))
}

func (p Program) usage(cmd *Command) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nUsage:\n  %s [flags]\n", cmd.Short, p.invocation(cmd))
	if _, other := p.Commands[cmd.Name]; !other {
		for _, name := range slices.Sorted(maps.Keys(p.Commands)) {
			fmt.Fprintf(&b, "  %s %s [flags]\t%s\n", p.Name, name, p.Commands[name]().Short)
		}
	}
	cmd.DescribeFlags()
	fmt.Fprintf(&b, "\nFlags:\n%s", cmd.Flags.FlagUsages())
	return b.String()
}

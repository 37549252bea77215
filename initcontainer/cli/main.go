package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// Program is a command-line program made of commands, the first being the default, as kuma-init
// is: `prog [flags]` runs the first, `prog <name> [flags]` another. Commands are made only when
// chosen: defining every flag of every command is a measurable part of a short run
// (BenchmarkKumaInitInstall).
type Program struct {
	Name, Version string
	// Commands are the default command's maker, then the others' by name.
	Default  func() *Command
	Commands map[string]func() *Command
}

// Main runs the program on args, printing errors and help the way cobra does, and returns the
// exit code.
func (p Program) Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	prog := p.Name
	var cmd *Command
	if len(args) > 0 {
		switch args[0] {
		case "version", "--version":
			fmt.Fprintln(stdout, prog, p.Version)
			return 0
		}
		if newCmd, ok := p.Commands[args[0]]; ok {
			cmd, args = newCmd(), args[1:]
		}
	}
	if cmd == nil {
		cmd = p.Default()
	}
	cmd.Flags.SetOutput(io.Discard)
	if err := cmd.Flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Fprint(stdout, p.usage(cmd))
			return 0
		}
		fmt.Fprintf(stderr, "Error: %v\nRun '%s --help' for usage.\n", err, prog)
		return 1
	}
	if cmd.Flags.NArg() > 0 {
		fmt.Fprintf(stderr, "Error: unexpected argument %q%s\nRun '%s --help' for usage.\n", cmd.Flags.Arg(0), boolValueHint(cmd.Flags, args), prog)
		return 1
	}
	if err := cmd.Run(ctx, stdout); err != nil {
		fmt.Fprintf(stderr, "Error: %v\n", err)
		return 1
	}
	return 0
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
	fmt.Fprintf(&b, "%s\n\nUsage:\n", cmd.Short)
	if _, other := p.Commands[cmd.Name]; !other {
		fmt.Fprintf(&b, "  %s [flags]\n", p.Name)
		for _, name := range slices.Sorted(maps.Keys(p.Commands)) {
			fmt.Fprintf(&b, "  %s %s [flags]\t%s\n", p.Name, name, p.Commands[name]().Short)
		}
	} else {
		fmt.Fprintf(&b, "  %s %s [flags]\n", p.Name, cmd.Name)
	}
	fmt.Fprintf(&b, "\nFlags:\n%s", cmd.Flags.FlagUsages())
	return b.String()
}

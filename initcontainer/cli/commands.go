package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/api/settings"
	"github.com/meshinit/meshinit/initcontainer"
)

// validateTimeout bounds each capture probe: generously, since a captured probe is answered from
// within the pod.
const validateTimeout = 2 * time.Second

// Command is one transparent-proxy command: its flags and what it does. It carries no framework,
// so kuma-init dispatches it with Main while meshinit mounts it in its cobra tree: kuma-init's
// start-up is part of every pod's, and cobra would add a third to it (BenchmarkKumaInitInstall).
type Command struct {
	// Name is the words that choose the command, such as "install transparent-proxy".
	Name  string
	Short string
	Flags *pflag.FlagSet
	Run   func(ctx context.Context, env Env) error
}

// Env is what a command reads and writes besides its flags.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Environ is the environment, as os.Environ returns it.
	Environ []string
}

// OSEnv is the process's own: its standard streams and environment.
func OSEnv() Env {
	return Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Environ: os.Environ()}
}

func (e Env) warn(format string, args ...any) {
	if e.Stderr != nil {
		fmt.Fprintf(e.Stderr, "Warning: "+format+"\n", args...)
	}
}

// newCommand makes a command with the flags of the settings keep selects (none: all).
func newCommand(name, short string, keep ...*settings.Setting) (*Command, *Flags) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	return &Command{Name: name, Short: short, Flags: fs}, addFlags(fs, keep...)
}

// reportFlags adds the flags install and uninstall share: --output, for their report, and the
// hidden path of firewalld's direct.xml, described by firewalldUsage.
func reportFlags(fs *pflag.FlagSet, firewalldUsage string) (output, firewalldPath *string) {
	output = fs.StringP("output", "o", outputText, "output format: text or json")
	firewalldPath = fs.String("firewalld-direct-xml", initcontainer.DefaultFirewalldDirect, firewalldUsage)
	fs.MarkHidden("firewalld-direct-xml")
	return output, firewalldPath
}

// Install is `kumactl install transparent-proxy` under another name: kuma-init's default command
// and `meshinit install transparent-proxy`. --config-file is kumactl's older spelling of --config.
func Install(name, short string) *Command {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	cmd, flags := &Command{Name: name, Short: short, Flags: fs}, AddFlags(fs)
	verify := cmd.Flags.Bool("verify", false, "after installing, prove capture with real connections (the proxy must not be running yet)")
	output, firewalldPath := reportFlags(cmd.Flags, "firewalld's direct.xml, for --store-firewalld")
	cmd.Run = func(ctx context.Context, env Env) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		cfg, err := flags.Config(ctx, env)
		if err != nil {
			return err
		}
		host, err := flags.Host(cfg)
		if err != nil {
			return err
		}
		out := env.Stdout
		installer := &initcontainer.Installer{}
		if cfg.DryRun {
			backend, err := installer.ChosenBackend(ctx, cfg)
			if err != nil {
				return fmt.Errorf("%w; name the backend with --backend", err)
			}
			plan := initcontainer.NewPlan(cfg, host, backend)
			if *output == outputJSON {
				_, err = out.Write(plan.JSON())
			} else {
				_, err = out.Write(plan.Scripts())
			}
			return err
		}
		res, err := installer.Install(ctx, cfg, host)
		if err != nil {
			return err
		}
		r := newReport(res)
		if res.PassthroughAddress {
			r.PassthroughAddress = "added ::6/128 to lo, the source of the proxy's inbound passthrough"
		}
		var failed error
		if cfg.StoreFirewalld {
			if err := initcontainer.StoreFirewalld(*firewalldPath, initcontainer.NewPlan(cfg, host, api.BackendIPTables)); err != nil {
				failed = fmt.Errorf("the rules are installed, but storing them for firewalld failed: %w", err)
			} else {
				r.Firewalld = "stored the rules in " + *firewalldPath
			}
		}
		if *verify && failed == nil {
			checks, err := initcontainer.Validate(cfg, host, validateTimeout)
			for _, c := range checks {
				r.Checks = append(r.Checks, c.String())
			}
			if err != nil {
				failed = fmt.Errorf("the rules are installed, but capture could not be proven:\n%w", err)
			}
		}
		if err := r.write(out, *output, cfg.Verbose, false); err != nil {
			return err
		}
		return failed
	}
	return cmd
}

// uninstallSettings are the settings uninstall takes: kumactl's (--dry-run, --verbose, and before
// 3.0 --ebpf-enabled) and those of running the iptables tools, which install may have been given.
var uninstallSettings = []*settings.Setting{settings.DryRun.Setting, settings.Verbose.Setting, settings.EBPFEnabled.Setting,
	settings.IPTablesExecutables.Setting, settings.Wait.Setting, settings.WaitInterval.Setting,
	settings.MaxRetries.Setting, settings.SleepBetweenRetries.Setting}

// Uninstall removes every rule and chain of ours, and our firewalld entries, as
// `kumactl uninstall transparent-proxy` does.
func Uninstall(name, short string) *Command {
	cmd, flags := newCommand(name, short, uninstallSettings...)
	// kumactl before 3.0 takes the path of its eBPF programs' filesystem; with eBPF off there is
	// nothing there of ours.
	cmd.Flags.String("ebpf-bpffs-path", "/run/kuma/bpf", "accepted for kumactl's sake; meshinit has no eBPF programs to remove")
	output, firewalldPath := reportFlags(cmd.Flags, "firewalld's direct.xml")
	cmd.Run = func(ctx context.Context, env Env) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		cfg, err := flags.Config(ctx, env)
		if err != nil {
			return err
		}
		if cfg.DryRun {
			res, err := (&initcontainer.Installer{}).UninstallScripts(ctx, cfg)
			if err != nil {
				return err
			}
			for _, f := range res.Families {
				switch {
				case f.Skipped != "":
					fmt.Fprintf(env.Stdout, "# %s: skipped: %s\n", f.Family, f.Skipped)
				case !f.Changed:
					fmt.Fprintf(env.Stdout, "# %s: nothing of ours to remove with %s\n", f.Family, f.Backend)
				case f.Backend.Native():
					fmt.Fprintf(env.Stdout, "# %s: nft -f -\n%s", f.Family, f.Script())
				default:
					fmt.Fprintf(env.Stdout, "# %s: %s --noflush\n%s", f.Family, f.Backend.Tool(f.Family, "restore"), f.Script())
				}
			}
			return nil
		}
		res, err := (&initcontainer.Installer{}).Uninstall(ctx, cfg)
		if err != nil {
			return err
		}
		r := newReport(res)
		if res.PassthroughAddress {
			r.PassthroughAddress = "removed ::6/128 from lo"
		}
		removed, err := initcontainer.RemoveFirewalld(*firewalldPath)
		if err != nil {
			return fmt.Errorf("our rules are removed, but removing them from firewalld failed: %w", err)
		}
		if removed > 0 {
			r.Firewalld = fmt.Sprintf("removed %d entries of ours from %s", removed, *firewalldPath)
		}
		return r.write(env.Stdout, *output, cfg.Verbose, true)
	}
	return cmd
}

// validateSettings are the settings validate takes: all but those of applying rules.
var validateSettings = func() []*settings.Setting {
	var out []*settings.Setting
	for _, s := range settings.All {
		if s != settings.DryRun.Setting && s != settings.StoreFirewalld.Setting {
			out = append(out, s)
		}
	}
	return out
}()

// Validate proves capture with real connections, for the CNI mode's validation container and for
// checking a host.
func Validate(name, short string) *Command {
	cmd, flags := newCommand(name, short, validateSettings...)
	flags.addConfigFlag(cmd.Flags, "config", "config-file")
	return validateCommand(cmd, flags)
}

// Validator is `kumactl install transparent-proxy-validator`, as Kuma's validation container runs
// it in CNI mode, as validate: --transparent-proxy-config names the documents,
// --validation-server-port the inbound port, and --config-file, kumactl's own configuration, is
// ignored.
func Validator(name, short string) *Command {
	cmd, flags := newCommand(name, short, settings.IPFamilyMode.Setting)
	flags.addConfigFlag(cmd.Flags, "transparent-proxy-config")
	cmd.Flags.Var(&serverPort{flags: flags}, "validation-server-port", "the inbound redirect port, where the probes must arrive: "+api.FormPort)
	cmd.Flags.String("config-file", "", "kumactl's own configuration, which meshinit does not need; ignored")
	return validateCommand(cmd, flags)
}

func validateCommand(cmd *Command, flags *Flags) *Command {
	timeout := cmd.Flags.Duration("timeout", validateTimeout, "how long each probe waits")
	cmd.Run = func(ctx context.Context, env Env) error {
		cfg, err := flags.Config(ctx, env)
		if err != nil {
			return err
		}
		host, err := flags.Host(cfg)
		if err != nil {
			return err
		}
		checks, err := initcontainer.Validate(cfg, host, *timeout)
		for _, c := range checks {
			fmt.Fprintln(env.Stdout, c)
		}
		if err != nil {
			return fmt.Errorf("capture could not be proven: the transparent-proxy rules are missing or wrong")
		}
		return nil
	}
	return cmd
}

// serverPort is the validator's --validation-server-port, its spelling of the inbound port.
type serverPort struct {
	flags *Flags
	text  string
}

func (p *serverPort) String() string { return p.text }
func (p *serverPort) Type() string   { return "port" }
func (p *serverPort) Set(v string) error {
	port, err := api.ParsePort(v)
	if err != nil {
		return err
	}
	p.text = v
	p.flags.set = append(p.flags.set, func(c *api.TransparentProxyConfig) { c.Redirect.Inbound.Port = port })
	p.flags.fields[api.FieldPath(func(c *api.TransparentProxyConfig) *uint16 { return &c.Redirect.Inbound.Port })] = "--validation-server-port"
	return nil
}

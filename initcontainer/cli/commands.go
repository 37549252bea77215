package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/meshinit/meshinit/initcontainer"
)

// validateTimeout bounds each capture probe: generously, since a captured probe is answered from
// within the pod.
const validateTimeout = 2 * time.Second

// Command is one transparent-proxy command: its flags and what it does. It carries no framework,
// so kuma-init dispatches it with Main while meshinit mounts it in its cobra tree: kuma-init's
// start-up is part of every pod's, and cobra would add a third to it (BenchmarkKumaInitInstall).
type Command struct {
	Name  string
	Short string
	Flags *pflag.FlagSet
	Run   func(ctx context.Context, out io.Writer) error
}

func newCommand(name, short string) (*Command, *Flags) {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	return &Command{Name: name, Short: short, Flags: fs}, AddFlags(fs)
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
// and `meshinit install transparent-proxy`.
func Install(name, short string) *Command {
	cmd, flags := newCommand(name, short)
	dryRun := cmd.Flags.Bool("dry-run", false, "print the restore scripts (with --output json, the plan) and change nothing")
	verify := cmd.Flags.Bool("verify", false, "after installing, prove capture with real connections (the proxy must not be running yet)")
	output, firewalldPath := reportFlags(cmd.Flags, "firewalld's direct.xml, for --store-firewalld")

	cmd.Run = func(ctx context.Context, out io.Writer) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		cfg, err := flags.Config()
		if err != nil {
			return err
		}
		host, err := flags.Host(cfg)
		if err != nil {
			return err
		}
		if *dryRun {
			plan := initcontainer.NewPlan(cfg, host)
			if *output == outputJSON {
				_, err = out.Write(plan.JSON())
			} else {
				_, err = out.Write(plan.Scripts())
			}
			return err
		}
		res, err := (&initcontainer.Installer{}).Install(ctx, cfg, host)
		if err != nil {
			return err
		}
		r := newReport(res)
		if res.PassthroughAddress {
			r.PassthroughAddress = "added ::6/128 to lo, the source of the proxy's inbound passthrough"
		}
		var failed error
		if cfg.StoreFirewalld {
			if err := initcontainer.StoreFirewalld(*firewalldPath, initcontainer.NewPlan(cfg, host)); err != nil {
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

// Uninstall removes every rule and chain of ours, and our firewalld entries.
func Uninstall(name, short string) *Command {
	cmd, flags := newCommand(name, short)
	output, firewalldPath := reportFlags(cmd.Flags, "firewalld's direct.xml")
	cmd.Run = func(ctx context.Context, out io.Writer) error {
		if err := checkOutput(*output); err != nil {
			return err
		}
		cfg, err := flags.Config()
		if err != nil {
			return err
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
		return r.write(out, *output, cfg.Verbose, true)
	}
	return cmd
}

// Validate proves capture with real connections, for the CNI mode's validation container and for
// checking a host.
func Validate(name, short string) *Command {
	cmd, flags := newCommand(name, short)
	timeout := cmd.Flags.Duration("timeout", validateTimeout, "how long each probe waits")
	cmd.Run = func(ctx context.Context, out io.Writer) error {
		cfg, err := flags.Config()
		if err != nil {
			return err
		}
		host, err := flags.Host(cfg)
		if err != nil {
			return err
		}
		checks, err := initcontainer.Validate(cfg, host, *timeout)
		for _, c := range checks {
			fmt.Fprintln(out, c)
		}
		if err != nil {
			return fmt.Errorf("capture could not be proven: the transparent-proxy rules are missing or wrong")
		}
		return nil
	}
	return cmd
}

// Command meshinit is the operator's CLI: it installs and removes the transparent proxy on hosts
// and VMs, and injects Kubernetes manifests offline with the webhook's own code.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/initcontainer/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{Use: "meshinit", Short: "Put workloads into a Kuma-compatible service mesh", SilenceUsage: true}
	install := &cobra.Command{Use: "install", Short: "Install a part of meshinit"}
	install.AddCommand(mount(cli.Install("transparent-proxy", "Redirect this host's traffic through the sidecar (kumactl-compatible flags)")),
		controlPlaneCommand())
	uninstall := &cobra.Command{Use: "uninstall", Short: "Remove a part of meshinit"}
	uninstall.AddCommand(mount(cli.Uninstall("transparent-proxy", "Remove every rule and chain of the transparent proxy, and nothing else")))
	version := &cobra.Command{Use: "version", Short: "Print the version", Args: cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), "meshinit", api.Version) }}
	root.AddCommand(install, uninstall, injectCommand(), version)
	return root
}

// mount makes a framework-free command a cobra command.
func mount(c *cli.Command) *cobra.Command {
	cmd := &cobra.Command{Use: c.Name, Short: c.Short, Args: cobra.NoArgs, SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return c.Run(cmd.Context(), cli.Env{Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), Environ: os.Environ()})
		}}
	c.DescribeFlags() // cobra prints the help from the flags as they are
	cmd.Flags().AddFlagSet(c.Flags)
	return cmd
}

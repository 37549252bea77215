// Command kuma-init is the init container's program: it installs the transparent-proxy rules in
// the pod's network namespace from the effective configuration and exits. It links no Kubernetes
// client and no CLI framework, so that it stays small and starts fast (BenchmarkKumaInitInstall).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/initcontainer/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Program{
		Name:    "kuma-init",
		Version: api.Version,
		Default: func() *cli.Command {
			return cli.Install("kuma-init", "Install the transparent-proxy rules in this network namespace")
		},
		Commands: map[string]func() *cli.Command{
			"validate": func() *cli.Command {
				return cli.Validate("validate", "Prove with real connections that the rules capture traffic")
			},
		},
	}.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

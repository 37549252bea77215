// Command install-cni is the kuma-cni DaemonSet's program: it copies kuma-cni onto the node,
// chains it into the network configuration, keeps it there, relays kuma-cni's logs, serves
// metrics, repairs the node's pods, and on SIGTERM takes kuma-cni out when its DaemonSet is being
// removed. Its settings are its environment (see package install).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/meshinit/meshinit/cni/install"
)

func main() {
	cfg, err := install.LoadConfig(os.Environ())
	if err != nil {
		fmt.Fprintf(os.Stderr, "install-cni: the settings are not valid; nothing was installed:\n%v\n", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.Level()}))
	in, err := install.New(cfg, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "install-cni: nothing was installed:\n%v\n", err)
		os.Exit(2)
	}
	// Kubelet stops the pod with SIGTERM; SIGINT is for a terminal.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := in.Run(ctx); err != nil {
		log.Error(err.Error())
		os.Exit(1)
	}
	log.Info("stopped")
}

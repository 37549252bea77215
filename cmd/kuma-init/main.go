// Command kuma-init is the init container's program: it installs the transparent-proxy rules in
// the pod's network namespace from the effective configuration and exits. It links no Kubernetes
// client and no CLI framework, so that it stays small and starts fast (BenchmarkKumaInitInstall).
// Its image links /usr/bin/kumactl to it, where Kuma's injector runs kumactl's command lines.
package main

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/meshinit/meshinit/api"
	"github.com/meshinit/meshinit/initcontainer/cli"
	"github.com/meshinit/meshinit/internal/lazysignal"
)

func main() {
	// Signals are heard only once the install waits on something: listening costs a goroutine and
	// a thread, a quarter of a bare start (internal/lazysignal).
	ctx := lazysignal.New(os.Interrupt, syscall.SIGTERM)
	name := "kuma-init"
	if filepath.Base(os.Args[0]) == "kumactl" {
		name = "kumactl" // so that help and errors show the command line as it was typed
	}
	code := cli.KumaInit(name, api.Version).Main(ctx, os.Args[1:], cli.OSEnv())
	ctx.Stop()
	os.Exit(code)
}

// Command pause is the pod sandbox's process of the test images: it holds the pod's namespaces,
// reaps the zombies that a shared PID namespace hands to it as PID 1, and exits 0 on SIGTERM or
// SIGINT, as Kubernetes' own pause does.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	// Go's runtime handles every signal from the start, so nothing outside tells when the
	// handler above is in place; this line does. A signal before it ends pause as the default
	// action would, as it would end Kubernetes' pause before its sigaction.
	os.Stderr.WriteString("pause: waiting for SIGTERM or SIGINT\n")
	for s := range sigs {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every child that has exited. Signals coalesce, so one SIGCHLD may stand for
// several children: it waits until none is left.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

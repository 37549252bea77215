// Command pause is the node kit's stand-in for the pod sandbox ("pause") image: it holds the pod's
// namespaces by sleeping, reaps the zombies of processes that join its PID namespace, and exits on
// SIGTERM or SIGINT as a runtime stops it. Static, so that its image needs nothing else.
// It is to be replaced by the project's bin/images/pause when that exists.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		// One SIGCHLD may stand for several children: reap all that have exited.
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

// Command tool is the node kit test's workload, in an image the test builds: `tool sleep` runs until
// SIGTERM, `tool exit N` exits with N (a Job's pod), `tool echo WORDS` prints them (an exec).
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tool sleep | exit N | echo WORDS...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "sleep":
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
	case "exit":
		code, _ := strconv.Atoi(os.Args[2])
		os.Exit(code)
	case "echo":
		fmt.Println(strings.Join(os.Args[2:], " "))
	default:
		os.Exit(2)
	}
}

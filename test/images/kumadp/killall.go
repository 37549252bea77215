package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// killall sends a signal (TERM unless -SIGNAL or -s SIGNAL, by name or number) to every process
// whose command name is one of the names, as psmisc's killall does for the preStop hook kuma-dp's
// image is given; it returns the exit status: 1 when a name matched no process.
func killall(args []string, proc string, stderr io.Writer) int {
	sig := syscall.SIGTERM
	var names []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		spec, isSignal := "", false
		switch {
		case a == "-s" || a == "--signal":
			if i+1 < len(args) {
				i++
				spec, isSignal = args[i], true
			}
		case strings.HasPrefix(a, "-") && len(a) > 1:
			spec, isSignal = a[1:], true
		default:
			names = append(names, a)
		}
		if isSignal {
			s, err := parseSignal(spec)
			if err != nil {
				fmt.Fprintf(stderr, "killall: %v\n", err)
				return 1
			}
			sig = s
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(stderr, "usage: killall [-SIGNAL | -s SIGNAL] NAME...")
		return 1
	}
	status := 0
	for _, name := range names {
		if n := signalNamed(proc, name, sig); n == 0 {
			fmt.Fprintf(stderr, "%s: no process found\n", name)
			status = 1
		}
	}
	return status
}

// parseSignal reads USR2, SIGUSR2 or 12.
func parseSignal(spec string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(spec); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(spec)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if s := unix.SignalNum(name); s != 0 {
		return s, nil
	}
	return 0, fmt.Errorf("%s: unknown signal", spec)
}

// signalNamed sends sig to the processes under proc named name (their comm, as the kernel
// truncates it to 15 bytes), this one excepted, and says to how many.
func signalNamed(proc, name string, sig syscall.Signal) int {
	entries, _ := os.ReadDir(proc)
	comm := name
	if len(comm) > 15 {
		comm = comm[:15]
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(proc, e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(data)) != comm {
			continue
		}
		if syscall.Kill(pid, sig) == nil {
			n++
		}
	}
	return n
}

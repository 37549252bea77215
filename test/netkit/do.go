package netkit

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshinit/meshinit/test/poll"
)

// Do runs fn on an OS thread that has entered the namespace, and returns fn's error. Sockets fn
// creates belong to the namespace for good, whichever thread later uses them; goroutines fn
// starts do not run in the namespace.
//
// The thread is locked and never unlocked: it may have changed namespace or credentials, so when
// fn returns the goroutine exits and the runtime terminates the thread rather than reuse it.
func (ns *Namespace) Do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// A panic here would kill the test binary before any cleanup could delete namespaces.
		defer func() {
			if r := recover(); r != nil {
				errc <- fmt.Errorf("netkit: panic in namespace %s: %v\n%s", ns.Name, r, debug.Stack())
			}
		}()
		if err := ns.enter(); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// enter switches the calling thread into the namespace.
func (ns *Namespace) enter() error {
	fd, err := unix.Open(ns.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("netkit: open namespace %s: %w", ns.Name, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("netkit: enter namespace %s: %w", ns.Name, err)
	}
	return nil
}

// waitReady waits, inside a namespace, until the veth end is operationally up and none of its
// addresses is tentative any more, so that the first test packet is not lost or delayed.
func waitReady() error {
	if err := poll.Wait(context.Background(), vethReady); err != nil {
		return fmt.Errorf("%s is not ready: %w", vethName, err)
	}
	return nil
}

func vethReady() (bool, error) {
	link, err := netlink.LinkByName(vethName)
	if err != nil {
		return false, err
	}
	if link.Attrs().OperState != netlink.OperUp {
		return false, nil
	}
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a.Flags&unix.IFA_F_TENTATIVE != 0 {
			return false, nil
		}
	}
	return true, nil
}

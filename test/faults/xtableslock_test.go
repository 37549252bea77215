package faults

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshinit/meshinit/test/binaries"
	"github.com/meshinit/meshinit/test/netkit"
	"github.com/meshinit/meshinit/test/poll"
	"github.com/meshinit/meshinit/test/prereq"
	"github.com/meshinit/meshinit/test/xtableslock"
)

// TestXtablesLockHeld runs the kuma-init binary in a network namespace while this process holds
// the xtables lock, as kube-proxy or a firewall daemon would. Only legacy iptables takes that lock;
// iptables-nft 1.8 never opens it (strace shows no open of /run/xtables.lock), so an nft install
// must not wait for it at all, and the lock is tested on the legacy backend, which kuma-init
// picks where the namespace's rules are legacy ones. It logs how long kuma-init waited, against
// when the lock was released, and how long it took to give up.
func TestXtablesLockHeld(t *testing.T) {
	prereq.Root(t)
	for _, tool := range []string{"iptables-legacy", "ip6tables-legacy", "iptables-legacy-restore", "ip6tables-legacy-restore", "iptables-nft-restore"} {
		prereq.Binary(t, tool)
	}
	kumaInit := binaries.Build(t, "kuma-init")
	lock := xtableslock.Open(t)

	t.Run("nft does not take it", func(t *testing.T) {
		ns := netkit.NewBare(t)
		lock.Hold(t)
		defer lock.Release(t)
		// One attempt of at most 1s: an install that waited for the held lock would fail.
		start := time.Now()
		out, errOut, err := runKumaInit(ns, kumaInit, "--wait", "1", "--max-retries", "0")
		if err != nil || !strings.Contains(out, "installed with iptables-nft") {
			t.Fatalf("kuma-init with the xtables lock held: %v\n%s%s", err, out, errOut)
		}
		t.Logf("nft: installed in %v with the xtables lock held throughout", time.Since(start).Round(time.Millisecond))
	})

	t.Run("legacy, released before the bound", func(t *testing.T) {
		const rounds = 5
		var afterRelease []time.Duration
		for range rounds {
			ns := legacyNamespace(t)
			lock.Hold(t)
			start := time.Now()
			p := startKumaInit(t, ns, kumaInit, "--wait", "5", "--max-retries", "4")
			// kuma-init's iptables blocked on the lock: kuma-init waits for it.
			poll.Until(t, "kuma-init waits for the xtables lock", func() (bool, error) {
				select {
				case err := <-p.done:
					return false, fmt.Errorf("kuma-init ended (%v) without waiting for the lock\n%s%s", err, &p.stdout, &p.stderr)
				default:
					return lock.WaitedForBy(p.cmd.Process.Pid)
				}
			})
			waiting := time.Since(start)
			lock.Release(t)
			released := time.Now()
			out, errOut, err := p.wait()
			afterRelease = append(afterRelease, time.Since(released))
			if err != nil || !strings.Contains(out, "ipv4: installed with iptables-legacy") || !strings.Contains(out, "ipv6: installed with iptables-legacy") {
				t.Fatalf("kuma-init: %v\n%s%s", err, out, errOut)
			}
			if rules := ns.Rules(t, "legacy"); strings.Count(rules, ":KUMA_MESH_OUTBOUND ") != 2 || !strings.Contains(rules, foreignRule) {
				t.Errorf("after the install the legacy rules are not ours in both families beside the foreign one:\n%s", rules)
			}
			t.Logf("legacy: kuma-init waited on the lock from %v after its start; released at %v; done %v after the release",
				waiting.Round(time.Millisecond), released.Sub(start).Round(time.Millisecond), afterRelease[len(afterRelease)-1].Round(time.Millisecond))
		}
		t.Logf("legacy: kuma-init done after the lock's release: %s", distribution(afterRelease))
	})

	t.Run("legacy, held past the bound", func(t *testing.T) {
		ns := legacyNamespace(t)
		before := ns.Rules(t, "legacy")
		lock.Hold(t)
		defer lock.Release(t)
		start := time.Now()
		out, errOut, err := runKumaInit(ns, kumaInit, "--wait", "1", "--max-retries", "1")
		gaveUp := time.Since(start)
		if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() == 0 {
			t.Fatalf("kuma-init with the lock held past the bound ended with %v, want a non-zero exit\n%s%s", err, out, errOut)
		}
		for _, want := range []string{xtableslock.Path, "after 2 attempts", "maxRetries 1", "up to 1s"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("kuma-init's error does not say %q:\n%s", want, errOut)
			}
		}
		// iptables-legacy-save takes no lock: the rules can be read while it is held.
		if after := ns.Rules(t, "legacy"); after != before {
			t.Errorf("the failed install changed the legacy rules:\n%s\nwant:\n%s", after, before)
		}
		if rules := ns.Run(t, "iptables-nft-save") + ns.Run(t, "ip6tables-nft-save"); strings.Contains(rules, "KUMA_MESH") {
			t.Errorf("the failed install left nft rules:\n%s", rules)
		}
		if addrs := ns.Run(t, "ip", "-6", "address", "show", "dev", "lo"); strings.Contains(addrs, "::6/128") {
			t.Errorf("the failed install left its ::6 passthrough address on lo:\n%s", addrs)
		}
		t.Logf("legacy: kuma-init gave up after %v (--wait 1 --max-retries 1)\n%s", gaveUp.Round(time.Millisecond), errOut)
	})
}

// foreignRule is someone else's legacy rule: it makes the namespace a legacy one for kuma-init's
// backend detection, and must survive every install.
const foreignRule = "-A OUTPUT -p tcp -m tcp --dport 9 -j RETURN"

// legacyNamespace is a bare namespace with a foreign legacy rule in each family.
func legacyNamespace(t *testing.T) *netkit.Namespace {
	t.Helper()
	ns := netkit.NewBare(t)
	for _, tool := range []string{"iptables-legacy", "ip6tables-legacy"} {
		ns.Run(t, tool, "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "--dport", "9", "-j", "RETURN")
	}
	return ns
}

// kumaInitProcess is kuma-init running in a namespace.
type kumaInitProcess struct {
	cmd            *exec.Cmd
	stdout, stderr strings.Builder
	done           chan error
}

func startKumaInit(t *testing.T, ns *netkit.Namespace, bin string, args ...string) *kumaInitProcess {
	t.Helper()
	p := &kumaInitProcess{cmd: exec.Command("ip", append([]string{"netns", "exec", ns.Name, bin}, args...)...), done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
		}
	})
	return p
}

// wait returns kuma-init's output and how it ended.
func (p *kumaInitProcess) wait() (string, string, error) {
	err := <-p.done
	return p.stdout.String(), p.stderr.String(), err
}

func runKumaInit(ns *netkit.Namespace, bin string, args ...string) (string, string, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns.Name, bin}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

package initcontainer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshinit/meshinit/api"
)

// Installer applies rules to the kernel of the calling thread's network namespace. Its zero value
// runs the real tools and detects the backend. Everything that depends on the namespace (the
// processes it starts, its sockets) happens on the calling goroutine, so a caller may run it on
// a thread locked into another namespace, as the CNI plugin does.
type Installer struct {
	Runner Runner
	// Backend is detected on first use when nil.
	Backend *Backend
	// sleep waits between attempts, and sys reaches the network namespace beyond iptables; tests
	// replace them.
	sleep func(time.Duration)
	sys   system
}

// system is what the Installer reads and changes in the namespace besides iptables rules.
type system interface {
	ipv6Available() bool
	ensurePassthroughAddress() (bool, error)
	removePassthroughAddress() (bool, error)
	kernelTables(b Backend, f Family) (exist, known bool, err error)
	kernelRuleCounts(b Backend, f Family) (map[string]map[string]int, bool, error)
}

type realSystem struct{}

func (realSystem) ipv6Available() bool                     { return ipv6Available() }
func (realSystem) ensurePassthroughAddress() (bool, error) { return ensurePassthroughAddress() }
func (realSystem) removePassthroughAddress() (bool, error) { return removePassthroughAddress() }
func (realSystem) kernelTables(b Backend, f Family) (bool, bool, error) {
	return kernelTables(b, f)
}
func (realSystem) kernelRuleCounts(b Backend, f Family) (map[string]map[string]int, bool, error) {
	return kernelRuleCounts(b, f)
}

func (in *Installer) system() system {
	if in.sys == nil {
		return realSystem{}
	}
	return in.sys
}

// FamilyResult is what an install or uninstall did to one family.
type FamilyResult struct {
	Family Family
	// Skipped says why the family was left alone; empty when it was handled.
	Skipped string
	// Before is what of ours was there; After what is there now.
	Before, After State
	// Script is what was applied; nil when nothing had to change.
	Script []byte
}

// Result is what an install or uninstall did.
type Result struct {
	Backend  Backend
	Families []FamilyResult
	// PassthroughAddress is true when ::6/128 was added to lo (install) or removed (uninstall).
	PassthroughAddress bool
}

// target is one family's desired state during a transition.
type target struct {
	family  Family
	desired State
	before  State
	script  []byte
	// fresh is true when none of our tables existed, so everything in them afterwards is ours.
	fresh bool
}

// Install makes the rules of ours in every family of cfg equal to Build's, in one restore per
// family, all or nothing: when a family fails, the families already changed are restored to what
// they were. The configuration is validated before anything is touched.
func (in *Installer) Install(ctx context.Context, cfg *api.TransparentProxyConfig, host Host) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var targets []*target
	var skipped []FamilyResult
	for _, f := range Families(cfg) {
		if f == IPv6 && !in.system().ipv6Available() {
			if cfg.Family() == api.IPFamilyIPv6 {
				return nil, errors.New("ipFamilyMode is ipv6, but this host has no IPv6")
			}
			skipped = append(skipped, FamilyResult{Family: f, Skipped: "this host has no IPv6"})
			continue
		}
		targets = append(targets, &target{family: f, desired: StateOf(Build(cfg, host, f))})
	}
	// The ::6 address is assigned while the restores run, rather than before: it costs a netlink
	// round trip in the kernel's IPv6 code, and every pod waits for kuma-init
	// (BenchmarkKumaInitInstall).
	added := false
	var during func() error
	if cfg.Redirect.Inbound.Enabled && slices.ContainsFunc(targets, func(t *target) bool { return t.family == IPv6 }) {
		during = func() error {
			now, err := in.system().ensurePassthroughAddress()
			added = added || now
			return err
		}
	}
	res, err := in.run(ctx, cfg, targets, skipped, during)
	if err != nil {
		if added {
			_, rmErr := in.system().removePassthroughAddress()
			err = errors.Join(err, rmErr)
		}
		return nil, err
	}
	res.PassthroughAddress = added
	return res, nil
}

// Uninstall removes every rule and chain of ours, in both families, and nothing else.
func (in *Installer) Uninstall(ctx context.Context, cfg *api.TransparentProxyConfig) (*Result, error) {
	targets, skipped := in.uninstallTargets()
	res, err := in.run(ctx, cfg, targets, skipped, nil)
	if err != nil || len(skipped) > 0 {
		return res, err
	}
	if res.PassthroughAddress, err = in.system().removePassthroughAddress(); err != nil {
		return nil, err
	}
	return res, nil
}

// uninstallTargets are both families, to hold nothing of ours, but IPv6 on a host without it.
func (in *Installer) uninstallTargets() ([]*target, []FamilyResult) {
	targets := []*target{{family: IPv4, desired: newState()}}
	var skipped []FamilyResult
	if in.system().ipv6Available() {
		targets = append(targets, &target{family: IPv6, desired: newState()})
	} else {
		skipped = append(skipped, FamilyResult{Family: IPv6, Skipped: "this host has no IPv6"})
	}
	return targets, skipped
}

func familiesOf(targets []*target) []Family {
	out := make([]Family, len(targets))
	for i, t := range targets {
		out[i] = t.family
	}
	return out
}

// UninstallScripts reads what of ours the kernel holds and returns, in each family's Script, what
// Uninstall would apply, applying nothing: uninstall's dry run.
func (in *Installer) UninstallScripts(ctx context.Context, cfg *api.TransparentProxyConfig) (*Result, error) {
	targets, skipped := in.uninstallTargets()
	backend, err := in.backend(ctx, cfg.IPTablesExecutables, familiesOf(targets))
	if err != nil {
		return nil, err
	}
	res := &Result{Backend: backend}
	for _, t := range targets {
		st, err := in.read(ctx, backend, t.family)
		if err != nil {
			return nil, err
		}
		res.Families = append(res.Families, FamilyResult{Family: t.family, Before: st, After: st, Script: Script(st, t.desired)})
	}
	res.Families = append(res.Families, skipped...)
	return res, nil
}

// run takes the namespace's lock and transitions the targets, retrying transient failures (the
// xtables lock held elsewhere) up to cfg.Retry.MaxRetries times, sleepBetweenRetries apart. during,
// when set, runs while the restores do; its failure fails the transition.
func (in *Installer) run(ctx context.Context, cfg *api.TransparentProxyConfig, targets []*target, skipped []FamilyResult, during func() error) (*Result, error) {
	backend, err := in.backend(ctx, cfg.IPTablesExecutables, familiesOf(targets))
	if err != nil {
		return nil, err
	}
	args := restoreArgs(cfg.Wait, cfg.WaitInterval)
	wait := time.Duration(cfg.Wait) * time.Second
	unlock, err := lockNamespace(ctx, wait)
	if err != nil {
		return nil, err
	}
	defer unlock()
	for attempt := uint(0); ; attempt++ {
		err = in.transition(ctx, backend, targets, args, during)
		if err == nil || !transient(err) {
			break
		}
		if attempt >= cfg.Retry.MaxRetries {
			// Each failure says only how long its own attempt waited; the bound is all of them.
			err = fmt.Errorf("gave up after %d attempts (maxRetries %d), each waiting up to %ds for the xtables lock (wait): %w",
				attempt+1, cfg.Retry.MaxRetries, cfg.Wait, err)
			break
		}
		in.pause(ctx, time.Duration(cfg.Retry.SleepBetweenRetries))
	}
	if err != nil {
		return nil, err
	}
	res := &Result{Backend: backend}
	for _, t := range targets {
		res.Families = append(res.Families, FamilyResult{Family: t.family, Before: t.before, After: t.desired, Script: t.script})
	}
	res.Families = append(res.Families, skipped...)
	return res, nil
}

// transition reads each family's rules, applies the scripts, and verifies what the kernel holds.
// The families' restores run at once. Any failure restores the families already changed.
func (in *Installer) transition(ctx context.Context, b Backend, targets []*target, args []string, during func() error) error {
	for _, t := range targets {
		// Given executables are of no backend known: the kernel is not asked, they are.
		exist, known, err := false, false, error(nil)
		if !b.given(t.family) {
			exist, known, err = in.system().kernelTables(b, t.family)
		}
		if err != nil {
			return err
		}
		t.fresh = known && !exist
		st := newState()
		if !t.fresh {
			if st, err = in.read(ctx, b, t.family); err != nil {
				return err
			}
		}
		t.before, t.script = st, Script(st, t.desired)
	}
	var changing []*target
	var cmds []command
	for _, t := range targets {
		if t.script != nil {
			changing = append(changing, t)
			cmds = append(cmds, command{b.Tool(t.family, "restore"), args, t.script})
		}
	}
	var duringErr error
	if during != nil {
		duringErr = during()
	}
	// Each family is verified on its own thread as soon as its restore is done.
	succeeded, errs := runAll(ctx, in.runner(), cmds, func(i int) error { return in.verify(ctx, b, changing[i]) })
	var applied []*target
	for i, t := range changing {
		if succeeded[i] {
			applied = append(applied, t)
		}
		if errs[i] != nil {
			errs[i] = fmt.Errorf("%s: %w", t.family, errs[i])
		}
	}
	if err := errors.Join(append(errs, duringErr)...); err != nil {
		return errors.Join(err, in.rollback(ctx, b, applied, args))
	}
	return nil
}

// verify checks that the kernel holds what was applied: in a fresh family by counting each
// chain's rules over netlink, otherwise by reading the rules back.
func (in *Installer) verify(ctx context.Context, b Backend, t *target) error {
	if t.fresh {
		counts, known, err := in.system().kernelRuleCounts(b, t.family)
		if err != nil {
			return err
		}
		if known {
			if want := t.desired.Count().PerChain; !maps.EqualFunc(counts, want, maps.Equal) {
				return fmt.Errorf("%s: the kernel holds %v rules per chain after applying, want %v", t.family, counts, want)
			}
			return nil
		}
	}
	st, err := in.read(ctx, b, t.family)
	if err == nil && !st.Satisfies(t.desired) {
		err = fmt.Errorf("%s: the rules read back after applying differ from those applied", t.family)
	}
	return err
}

// rollback restores the families already changed to their state before the transition.
func (in *Installer) rollback(ctx context.Context, b Backend, applied []*target, args []string) error {
	var errs []error
	for _, t := range applied {
		st, err := in.read(ctx, b, t.family)
		if err == nil {
			if script := Script(st, t.before); script != nil {
				_, err = run(in.runner(), ctx, b.Tool(t.family, "restore"), args, script)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rolling back %s: %w", t.family, err))
		}
	}
	return errors.Join(errs...)
}

func (in *Installer) read(ctx context.Context, b Backend, f Family) (State, error) {
	out, err := run(in.runner(), ctx, b.Tool(f, "save"), nil, nil)
	if err != nil {
		return State{}, fmt.Errorf("%s: reading the rules: %w", f, err)
	}
	st, err := ParseState(out)
	if err != nil {
		return State{}, fmt.Errorf("%s: %w", f, err)
	}
	return st, nil
}

// restoreArgs are iptables-restore's arguments: legacy iptables waits wait seconds for the xtables
// lock, trying every waitInterval microseconds (iptables 1.8.9 ignores it, with a notice);
// iptables-nft takes no lock and accepts both.
func restoreArgs(wait, waitInterval uint) []string {
	args := []string{"--noflush"}
	if wait > 0 {
		args = append(args, "--wait", strconv.FormatUint(uint64(wait), 10))
		if waitInterval > 0 {
			args = append(args, "--wait-interval", strconv.FormatUint(uint64(waitInterval), 10))
		}
	}
	return args
}

// backend is the backend of the families' tools: the given executables where the configuration
// names them, the detected backend's tools otherwise. Nothing is detected when every family's are
// given.
func (in *Installer) backend(ctx context.Context, exe api.Executables, families []Family) (Backend, error) {
	var b Backend
	switch {
	case in.Backend != nil:
		b = *in.Backend
	case slices.ContainsFunc(families, func(f Family) bool { return exe[f.command("restore")] == "" }):
		detected, err := DetectBackend(ctx, in.runner())
		if err != nil {
			return Backend{}, err
		}
		in.Backend = &detected
		b = detected
	}
	b.Executables = exe
	return b, nil
}

func (in *Installer) runner() Runner {
	if in.Runner == nil {
		return ExecRunner{}
	}
	return in.Runner
}

func (in *Installer) pause(ctx context.Context, d time.Duration) {
	if in.sleep != nil {
		in.sleep(d)
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// transient reports failures worth another attempt: the xtables lock was busy, or the kernel
// asked to try again.
func transient(err error) bool {
	ce, ok := errors.AsType[*CommandError](err)
	if !ok {
		return false
	}
	return ce.ExitCode == 4 || strings.Contains(ce.Stderr, "xtables lock") ||
		strings.Contains(ce.Stderr, "temporarily unavailable")
}

// Check reports whether the kernel holds exactly the rules of ours that Build makes of cfg, in
// every family of cfg: what a CNI CHECK asks.
func (in *Installer) Check(ctx context.Context, cfg *api.TransparentProxyConfig, host Host) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	backend, err := in.backend(ctx, cfg.IPTablesExecutables, Families(cfg))
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range Families(cfg) {
		if f == IPv6 && !in.system().ipv6Available() {
			continue
		}
		st, err := in.read(ctx, backend, f)
		if err == nil && !st.Satisfies(StateOf(Build(cfg, host, f))) {
			err = fmt.Errorf("%s: the rules of ours are not those of the configuration (%d rules of ours present)", f, st.Count().Rules)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

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
// runs the real tools and chooses the backend as the configuration says. Everything that depends
// on the namespace (the processes it starts, its sockets) happens on the calling goroutine, so a
// caller may run it on a thread locked into another namespace, as the CNI plugin does.
type Installer struct {
	Runner Runner
	// Backend, when set, is used whatever the configuration's meshinit.backend says; the iptables
	// variant is otherwise detected on first use, and uninstall detects it when Backend is nftables.
	Backend *Backend
	// sleep waits between attempts, and sys reaches the network namespace beyond iptables' tools;
	// tests replace them.
	sleep func(time.Duration)
	sys   system
	// detected is the iptables variant detected on first use.
	detected *Backend
}

// system is what the Installer reads and changes in the namespace besides running iptables'
// tools: addresses, nftables over netlink, and what the kernel says of iptables' tables.
type system interface {
	ipv6Available() bool
	ensurePassthroughAddress() (bool, error)
	removePassthroughAddress() (bool, error)
	kernelTables(b Backend, f Family) (exist, known bool, err error)
	kernelRuleCounts(b Backend, f Family) (map[string]map[string]int, bool, error)
	// kernelChains lists, by table, the chains of iptables' tables of ours; known is false for
	// backends whose tables cannot be removed, legacy's.
	kernelChains(b Backend, f Family) (chains map[string][]string, known bool, err error)
	backendFacts() BackendFacts
	// legacyTables reports whether legacy iptables tables exist, whose rules only its tools reach.
	legacyTables() bool
	nftTables() ([]nftTableRef, error)
	readNFT(f Family) (*nftState, error)
	readXtablesNFT(f Family, tables []string) (*xtNFTState, error)
	commitNFT(changes []nftFamilyChange) error
	// nftRuleCounts counts the rules of each chain of our nftables tables of the families.
	nftRuleCounts(families []Family) (map[Family]map[string]int, error)
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
func (realSystem) kernelChains(b Backend, f Family) (map[string][]string, bool, error) {
	return kernelChains(b, f)
}
func (realSystem) backendFacts() BackendFacts {
	tables, err := nftListTables()
	return readBackendFacts(tables, err)
}
func (realSystem) legacyTables() bool                  { return legacyTablesExist() }
func (realSystem) nftTables() ([]nftTableRef, error)   { return nftListTables() }
func (realSystem) readNFT(f Family) (*nftState, error) { return readNFTTable(f) }
func (realSystem) readXtablesNFT(f Family, tables []string) (*xtNFTState, error) {
	return readXtablesNFT(f, tables)
}
func (realSystem) commitNFT(changes []nftFamilyChange) error { return commitNFT(changes) }
func (realSystem) nftRuleCounts(families []Family) (map[Family]map[string]int, error) {
	return nftOurRuleCounts(families)
}

func (in *Installer) system() system {
	if in.sys == nil {
		return realSystem{}
	}
	return in.sys
}

// FamilyResult is what an install or uninstall did to one family in one backend.
type FamilyResult struct {
	Family  Family
	Backend Backend
	// Skipped says why the family was left alone; empty when it was handled.
	Skipped string
	// Before is what of ours was there; After what is there now.
	Before, After State
	// Changed is true when something had to change; Script then says what was applied.
	Changed bool
	script  func() []byte
}

// Script is what was applied: a restore script, or an nftables transaction in nft's syntax; nil
// when nothing had to change. A transaction goes to the kernel as messages and is spelled only
// when asked (--verbose, dry runs and plans): spelling it was a twentieth of an install.
func (f FamilyResult) Script() []byte {
	if !f.Changed {
		return nil
	}
	return f.script()
}

// applied records script as what was applied to the family; nil when nothing changed.
func (f *FamilyResult) applied(script []byte) {
	f.Changed, f.script = script != nil, func() []byte { return script }
}

// Result is what an install or uninstall did.
type Result struct {
	// Backend is where the rules are: the one chosen, or for uninstall the iptables variant.
	Backend Backend
	// Chosen says why auto chose Backend; empty when the configuration named it.
	Chosen   string
	Families []FamilyResult
	// PassthroughAddress is true when ::6/128 was added to lo (install) or removed (uninstall).
	PassthroughAddress bool
}

// target is one family's desired state during a transition.
type target struct {
	family Family
	// rules are what Build makes; desired, their iptables state, is spelled only for an iptables
	// backend.
	rules   Ruleset
	desired State
	before  State
	script  []byte
	// fresh is true when none of our tables existed, so everything in them afterwards is ours.
	fresh bool
	// dropped are the markers the transition removes: made tables and chains to remove once empty.
	dropped []string
}

// Install makes the rules of ours in every family of cfg equal to Build's, with the backend cfg
// chooses, all or nothing, and removes those of ours from the other backend in the same step. With
// iptables, one restore per family: when a family fails, the families already changed are restored
// to what they were. With nftables, one netlink transaction for every family. The configuration is
// validated before anything is touched.
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
		targets = append(targets, &target{family: f, rules: Build(cfg, host, f)})
	}
	backend, chosen, err := in.choose(ctx, cfg, familiesOf(targets))
	if err != nil {
		return nil, err
	}
	if !backend.Native() {
		for _, t := range targets {
			t.desired = StateOf(t.rules)
		}
	}
	unlock, err := lockNamespace(ctx, time.Duration(cfg.Wait)*time.Second)
	if err != nil {
		return nil, err
	}
	defer unlock()
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
	var res *Result
	if backend.Native() {
		res, err = in.installNFT(ctx, cfg, targets, skipped, during)
	} else {
		res, err = in.run(ctx, cfg, backend, targets, skipped, during, true)
	}
	if err != nil {
		if added {
			_, rmErr := in.system().removePassthroughAddress()
			err = errors.Join(err, rmErr)
		}
		return nil, err
	}
	res.Chosen = chosen
	res.PassthroughAddress = added
	return res, nil
}

// choose is the backend to install with: the Installer's, or the configuration's, auto resolved
// by ChooseBackend; chosen says why auto chose it.
func (in *Installer) choose(ctx context.Context, cfg *api.TransparentProxyConfig, families []Family) (b Backend, chosen string, err error) {
	choice := cfg.Backend()
	switch {
	case in.Backend != nil && in.Backend.Native():
		return *in.Backend, "", nil
	case in.Backend != nil:
		choice = api.BackendIPTables
	case choice == api.BackendAuto:
		facts := in.system().backendFacts()
		choice = ChooseBackend(cfg, facts)
		chosen = "auto chose " + string(choice) + ": " + facts.String()
	}
	if choice == api.BackendNFTables {
		return NFTablesBackend, chosen, nil
	}
	b, err = in.backend(ctx, cfg.IPTablesExecutables, families)
	return b, chosen, err
}

// ChosenBackend is the backend Install would use for cfg, read from the namespace when cfg says
// auto, changing nothing: what --dry-run prints the rules for.
func (in *Installer) ChosenBackend(ctx context.Context, cfg *api.TransparentProxyConfig) (api.Backend, error) {
	b, _, err := in.choose(ctx, cfg, Families(cfg))
	if b.Native() {
		return api.BackendNFTables, err
	}
	return api.BackendIPTables, err
}

// Uninstall removes every rule and chain of ours, in both families and both backends, and the
// tables and built-in chains install made that nothing else is in, and nothing else.
func (in *Installer) Uninstall(ctx context.Context, cfg *api.TransparentProxyConfig) (*Result, error) {
	targets, skipped := in.uninstallTargets()
	unlock, err := lockNamespace(ctx, time.Duration(cfg.Wait)*time.Second)
	if err != nil {
		return nil, err
	}
	defer unlock()
	withTools := iptablesUsable(in.Backend, cfg)
	res, err := in.uninstallNFT(familiesOf(targets), !withTools)
	if err != nil {
		return nil, err
	}
	if withTools {
		b, err := in.backend(ctx, cfg.IPTablesExecutables, familiesOf(targets))
		if err != nil {
			return nil, err
		}
		xt, err := in.run(ctx, cfg, b, targets, nil, nil, false)
		if err != nil {
			return nil, err
		}
		res.Backend = xt.Backend
		res.Families = append(xt.Families, res.Families...)
	} else if in.system().legacyTables() {
		return nil, errors.New("legacy iptables tables exist in this namespace, and without iptables-legacy-save and -restore rules of ours in them can be neither found nor removed: install iptables")
	}
	res.Families = append(res.Families, skipped...)
	if len(skipped) > 0 {
		return res, nil
	}
	if res.PassthroughAddress, err = in.system().removePassthroughAddress(); err != nil {
		return nil, err
	}
	return res, nil
}

// iptablesUsable reports whether uninstall can reach iptables through its tools: an iptables
// variant is set, programs are given, or an iptables-restore is on PATH.
func iptablesUsable(set *Backend, cfg *api.TransparentProxyConfig) bool {
	return set != nil && !set.Native() || len(cfg.IPTablesExecutables) > 0 || iptablesOnPath()
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
	withTools := iptablesUsable(in.Backend, cfg)
	res, changes, err := in.nftRemoval(familiesOf(targets), !withTools)
	if err != nil {
		return nil, err
	}
	for i, ch := range changes {
		if text := ch.text(); text != "" {
			res.Families[i].applied([]byte(text))
		}
	}
	if withTools {
		backend, err := in.backend(ctx, cfg.IPTablesExecutables, familiesOf(targets))
		if err != nil {
			return nil, err
		}
		var xt []FamilyResult
		for _, t := range targets {
			st, err := in.read(ctx, backend, t.family)
			if err != nil {
				return nil, err
			}
			fr := FamilyResult{Family: t.family, Backend: backend, Before: st, After: st}
			fr.applied(Script(st, t.desired))
			xt = append(xt, fr)
		}
		res.Backend = backend
		res.Families = append(xt, res.Families...)
	}
	res.Families = append(res.Families, skipped...)
	return res, nil
}

// run transitions the targets with an iptables backend, retrying transient failures (the xtables
// lock held elsewhere) up to cfg.Retry.MaxRetries times, sleepBetweenRetries apart. during, when
// set, runs while the restores do; its failure fails the transition. removeNFT also removes our
// nftables tables, in the same step: install's move from the other backend. The caller holds the
// namespace's lock.
func (in *Installer) run(ctx context.Context, cfg *api.TransparentProxyConfig, backend Backend, targets []*target, skipped []FamilyResult, during func() error, removeNFT bool) (*Result, error) {
	args := restoreArgs(cfg.Wait, cfg.WaitInterval)
	var err error
	for attempt := uint(0); ; attempt++ {
		err = in.transition(ctx, backend, targets, args, during, removeNFT)
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
		fr := FamilyResult{Family: t.family, Backend: backend, Before: t.before, After: t.desired}
		fr.applied(t.script)
		res.Families = append(res.Families, fr)
	}
	res.Families = append(res.Families, skipped...)
	return res, nil
}

// transition reads each family's rules, applies the scripts, and verifies what the kernel holds;
// then, with removeNFT, it removes our nftables tables, and the tables and built-in chains of
// iptables-nft that install made and nothing of ours needs any more. The families' restores run at
// once. Any failure restores the families already changed.
func (in *Installer) transition(ctx context.Context, b Backend, targets []*target, args []string, during func() error, removeNFT bool) error {
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
		t.before = st
		if t.dropped, err = in.mark(b, t); err != nil {
			return err
		}
		t.script = Script(st, t.desired)
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
	err := errors.Join(append(errs, duringErr)...)
	if err == nil {
		err = in.afterIPTables(b, targets, removeNFT)
	}
	if err != nil {
		return errors.Join(err, in.rollback(ctx, b, applied, args))
	}
	return nil
}

// mark adds to t's desired state the markers of the iptables-nft tables and built-in chains it
// uses: those of t's current state, and those the restore is about to make. Legacy tables, and
// given programs' of no backend known, are never removed, and get none. It returns the markers of
// the current state the desired one no longer has.
func (in *Installer) mark(b Backend, t *target) ([]string, error) {
	removable := b.Name == "nft" && !b.given(t.family)
	var kernel map[string][]string
	known := removable && t.fresh
	if removable && !t.fresh {
		var err error
		if kernel, known, err = in.system().kernelChains(b, t.family); err != nil {
			return nil, err
		}
	}
	had := func(table, marker string) bool { return slices.Contains(t.before.Chains[table], marker) }
	for _, table := range tables {
		var builtins []string
		for chain := range t.desired.Rules[table] {
			if !isOurChain(chain) {
				builtins = append(builtins, chain)
			}
		}
		if len(builtins) == 0 && len(t.desired.Chains[table]) == 0 {
			continue
		}
		chains, exists := kernel[table]
		if had(table, markerTable) || known && !exists {
			t.desired.addChain(table, markerTable)
			continue
		}
		for _, chain := range builtins {
			if had(table, markerPrefix+chain) || known && !slices.Contains(chains, chain) {
				t.desired.addChain(table, markerPrefix+chain)
			}
		}
	}
	var dropped []string
	for table, chains := range t.before.Chains {
		for _, chain := range chains {
			if strings.HasPrefix(chain, markerPrefix) && !slices.Contains(t.desired.Chains[table], chain) {
				dropped = append(dropped, table+"/"+chain)
			}
		}
	}
	return dropped, nil
}

// afterIPTables finishes an iptables transition: it removes, in one nftables transaction, the
// tables and built-in chains of iptables-nft whose markers the transition dropped once nothing is
// in them, and, with removeNFT, our nftables tables.
func (in *Installer) afterIPTables(b Backend, targets []*target, removeNFT bool) error {
	var changes []nftFamilyChange
	var ours []nftTableRef
	if removeNFT {
		var err error
		if ours, err = in.ourNFTTables(); err != nil {
			return err
		}
	}
	for _, f := range []Family{IPv4, IPv6} {
		ch := nftFamilyChange{family: f, delete: slices.Contains(ours, nftTableRef{tableFamily(f), nftTable})}
		i := slices.IndexFunc(targets, func(t *target) bool { return t.family == f })
		if i >= 0 && len(targets[i].dropped) > 0 {
			dels, err := in.madeAndEmpty(f, targets[i].dropped)
			if err != nil {
				return err
			}
			ch.xt = dels
		}
		if ch.delete || len(ch.xt) > 0 {
			changes = append(changes, ch)
		}
	}
	if len(changes) == 0 {
		return nil
	}
	return in.system().commitNFT(changes)
}

// ourNFTTables lists our nftables tables; none where nf_tables cannot be reached at all.
func (in *Installer) ourNFTTables() ([]nftTableRef, error) {
	tables, err := in.system().nftTables()
	if err != nil {
		if nftUnusable(err) {
			return nil, nil
		}
		return nil, err
	}
	return slices.DeleteFunc(tables, func(t nftTableRef) bool { return t.name != nftTable }), nil
}

// madeAndEmpty is what removes the tables and built-in chains named by dropped markers
// ("table/KUMA_MESH_MADE_X") that nothing is in any more.
func (in *Installer) madeAndEmpty(f Family, dropped []string) ([]xtDeletion, error) {
	var names []string
	for _, d := range dropped {
		table, _, _ := strings.Cut(d, "/")
		if !slices.Contains(names, table) {
			names = append(names, table)
		}
	}
	st, err := in.system().readXtablesNFT(f, names)
	if err != nil {
		return nil, err
	}
	for _, t := range st.tables {
		for _, d := range dropped {
			table, marker, _ := strings.Cut(d, "/")
			switch {
			case table != t.name:
			case marker == markerTable:
				t.madeByUs = true
			default:
				t.madeChains = append(t.madeChains, strings.TrimPrefix(marker, markerPrefix))
			}
		}
	}
	return st.removal(false), nil
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
			// Only iptables' tables: ours of nftables, say, are not this backend's.
			maps.DeleteFunc(counts, func(table string, _ map[string]int) bool { return !slices.Contains(tables, table) })
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

// rollback restores the families already changed to their state before the transition, and
// removes the tables and built-in chains of iptables-nft it made.
func (in *Installer) rollback(ctx context.Context, b Backend, applied []*target, args []string) error {
	var errs []error
	var changes []nftFamilyChange
	for _, t := range applied {
		st, err := in.read(ctx, b, t.family)
		if err == nil {
			if script := Script(st, t.before); script != nil {
				_, err = run(in.runner(), ctx, b.Tool(t.family, "restore"), args, script)
			}
		}
		var made []string
		for table, chains := range t.desired.Chains {
			for _, chain := range chains {
				if strings.HasPrefix(chain, markerPrefix) && !slices.Contains(t.before.Chains[table], chain) {
					made = append(made, table+"/"+chain)
				}
			}
		}
		if err == nil && len(made) > 0 {
			var dels []xtDeletion
			if dels, err = in.madeAndEmpty(t.family, made); len(dels) > 0 {
				changes = append(changes, nftFamilyChange{family: t.family, xt: dels})
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rolling back %s: %w", t.family, err))
		}
	}
	if len(changes) > 0 {
		if err := in.system().commitNFT(changes); err != nil {
			errs = append(errs, fmt.Errorf("rolling back: removing the tables the install made: %w", err))
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
	case in.Backend != nil && !in.Backend.Native():
		b = *in.Backend
	case in.detected != nil:
		b = *in.detected
	case slices.ContainsFunc(families, func(f Family) bool { return exe[f.command("restore")] == "" }):
		detected, err := DetectBackend(ctx, in.runner())
		if err != nil {
			return Backend{}, err
		}
		in.detected = &detected
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
	backend, _, err := in.choose(ctx, cfg, Families(cfg))
	if err != nil {
		return err
	}
	if backend.Native() {
		return in.checkNFT(cfg, host)
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

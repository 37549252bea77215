package initcontainer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/meshinit/meshinit/api"
)

// installNFT makes our nftables table of each target's family hold what Build makes of cfg, and
// removes every rule and chain of ours from iptables-nft's tables, in one netlink transaction: all
// of it, or nothing. Rules of ours in legacy iptables, which netlink cannot reach, are removed
// right after; if that fails, our tables are put back as they were. during runs just before the
// transaction; its failure fails the install. The caller holds the namespace's lock.
func (in *Installer) installNFT(ctx context.Context, cfg *api.TransparentProxyConfig, targets []*target, skipped []FamilyResult, during func() error) (*Result, error) {
	sys := in.system()
	tables, err := sys.nftTables()
	if err != nil {
		return nil, fmt.Errorf("the nftables backend needs nf_tables: %w", err)
	}
	res := &Result{Backend: NFTablesBackend}
	var changes []nftFamilyChange
	before := map[Family]*nftState{}
	desired := map[Family]NFTRuleset{}
	for _, t := range targets {
		want := NFTables(t.rules)
		desired[t.family] = want
		var cur *nftState
		if slices.Contains(tables, nftTableRef{tableFamily(t.family), nftTable}) {
			if cur, err = sys.readNFT(t.family); err != nil {
				return nil, err
			}
		}
		before[t.family] = cur
		ch := nftFamilyChange{family: t.family}
		if !cur.satisfies(want) {
			ch.delete, ch.add = cur != nil, &want
		}
		changes = append(changes, ch)
	}
	xtBefore := map[Family]State{}
	if changes, err = in.withXtablesRemoval(tables, changes, xtBefore); err != nil {
		return nil, err
	}
	legacy, err := in.legacyOurs(ctx)
	if err != nil {
		return nil, err
	}
	changing := slices.ContainsFunc(changes, func(ch nftFamilyChange) bool { return ch.delete || ch.add != nil || len(ch.xt) > 0 })
	if changing {
		if during != nil {
			if err := during(); err != nil {
				return nil, err
			}
		}
		if err := sys.commitNFT(changes); err != nil {
			return nil, err
		}
		err := in.verifyNFT(changes, before)
		if err == nil {
			err = in.removeLegacy(ctx, cfg, legacy)
		}
		if err != nil {
			return nil, errors.Join(err, in.undoNFT(changes, before))
		}
	} else if len(legacy) > 0 {
		if err := in.removeLegacy(ctx, cfg, legacy); err != nil {
			return nil, err
		}
	}
	for _, ch := range changes {
		fr := FamilyResult{Family: ch.family, Backend: NFTablesBackend, Before: newState(), After: newState()}
		if cur := before[ch.family]; cur != nil {
			fr.Before = nftStateOf(cur.Chains, cur.Rules)
		}
		if want, ok := desired[ch.family]; ok {
			fr.After = nftStateOf(want.Chains, want.Rules)
		}
		for table, chains := range xtBefore[ch.family].Rules {
			for chain, rules := range chains {
				for _, r := range rules {
					fr.Before.addRule(table, chain, r)
				}
			}
		}
		if ch.delete || ch.add != nil || len(ch.xt) > 0 {
			fr.Changed, fr.script = true, func() []byte { return []byte(ch.text()) }
		}
		res.Families = append(res.Families, fr)
	}
	res.Families = append(res.Families, skipped...)
	return res, nil
}

// withXtablesRemoval adds to changes, in every family, the removal of what of ours iptables-nft's
// tables hold, and records in before the rules removed.
func (in *Installer) withXtablesRemoval(tables []nftTableRef, changes []nftFamilyChange, before map[Family]State) ([]nftFamilyChange, error) {
	for _, f := range []Family{IPv4, IPv6} {
		var names []string
		for _, name := range tables {
			if name.family == tableFamily(f) && slices.Contains(iptablesTableNames, name.name) {
				names = append(names, name.name)
			}
		}
		if len(names) == 0 {
			continue
		}
		xt, err := in.system().readXtablesNFT(f, names)
		if err != nil {
			return nil, err
		}
		dels := xt.removal(true)
		if len(dels) == 0 {
			continue
		}
		st := newState()
		for _, t := range xt.tables {
			for _, c := range t.chains {
				for _, h := range c.ours {
					st.addRule("iptables "+t.name, c.name, fmt.Sprintf("handle %d", h))
				}
			}
		}
		before[f] = st
		i := slices.IndexFunc(changes, func(ch nftFamilyChange) bool { return ch.family == f })
		if i < 0 {
			changes = append(changes, nftFamilyChange{family: f})
			i = len(changes) - 1
		}
		changes[i].xt = dels
	}
	return changes, nil
}

// legacyOurs reads, where legacy iptables tables exist, what of ours they hold, by family.
func (in *Installer) legacyOurs(ctx context.Context) (map[Family]State, error) {
	if !in.system().legacyTables() {
		return nil, nil
	}
	if !hasTool("iptables-legacy-save") {
		return nil, errors.New("legacy iptables tables exist in this namespace, and without iptables-legacy-save and -restore rules of ours in them can be neither found nor removed: install iptables, or use the iptables backend")
	}
	out := map[Family]State{}
	for _, f := range []Family{IPv4, IPv6} {
		if f == IPv6 && !in.system().ipv6Available() {
			continue
		}
		st, err := in.read(ctx, Backend{Name: "legacy"}, f)
		if err != nil {
			return nil, err
		}
		if c := st.Count(); c.Rules > 0 || c.Chains > 0 {
			out[f] = st
		}
	}
	return out, nil
}

// removeLegacy removes what of ours legacy iptables holds.
func (in *Installer) removeLegacy(ctx context.Context, cfg *api.TransparentProxyConfig, ours map[Family]State) error {
	legacy := Backend{Name: "legacy"}
	for _, f := range slices.Sorted(maps.Keys(ours)) {
		if _, err := run(in.runner(), ctx, legacy.Tool(f, "restore"), restoreArgs(cfg.Wait, cfg.WaitInterval), Script(ours[f], newState())); err != nil {
			return fmt.Errorf("%s: removing the rules of ours from legacy iptables: %w", f, err)
		}
	}
	return nil
}

// verifyNFT checks that each table made holds what was added: by counting each chain's rules where
// there was no table before, over one socket for every family, by reading it back otherwise.
func (in *Installer) verifyNFT(changes []nftFamilyChange, before map[Family]*nftState) error {
	var fresh []Family
	for _, ch := range changes {
		if ch.add != nil && before[ch.family] == nil {
			fresh = append(fresh, ch.family)
		}
	}
	var counts map[Family]map[string]int
	if len(fresh) > 0 {
		var err error
		if counts, err = in.system().nftRuleCounts(fresh); err != nil {
			return err
		}
	}
	for _, ch := range changes {
		if ch.add == nil {
			continue
		}
		if slices.Contains(fresh, ch.family) {
			want := nftStateOf(ch.add.Chains, ch.add.Rules).Count().PerChain[nftTable]
			if got := counts[ch.family]; !maps.Equal(got, want) {
				return fmt.Errorf("%s: the kernel holds %v rules per chain of our table after the transaction, want %v", ch.family, got, want)
			}
			continue
		}
		st, err := in.system().readNFT(ch.family)
		if err != nil {
			return err
		}
		if !st.satisfies(*ch.add) {
			return fmt.Errorf("%s: the table read back after the transaction differs from the one made", ch.family)
		}
	}
	return nil
}

// undoNFT puts our tables back as they were before changes, which is nothing where there were
// none. Rules of ours removed from iptables-nft are not put back.
func (in *Installer) undoNFT(changes []nftFamilyChange, before map[Family]*nftState) error {
	var undo []nftFamilyChange
	for _, ch := range changes {
		if ch.add == nil {
			continue
		}
		u := nftFamilyChange{family: ch.family, delete: true}
		if b := before[ch.family]; b != nil {
			if b.Unknown > 0 {
				return fmt.Errorf("%s: our table as it was held what this version does not make, and cannot be put back", ch.family)
			}
			u.add = &NFTRuleset{Family: ch.family, Chains: b.Chains, Rules: b.Rules}
		}
		undo = append(undo, u)
	}
	if err := in.system().commitNFT(undo); err != nil {
		return fmt.Errorf("putting our nftables tables back as they were: %w", err)
	}
	return nil
}

// nftRemoval is what removes our nftables tables of the families, and with xtToo the rules of
// ours from iptables-nft's tables: only the families where there is something to remove.
func (in *Installer) nftRemoval(families []Family, xtToo bool) (*Result, []nftFamilyChange, error) {
	res := &Result{Backend: NFTablesBackend}
	tables, err := in.system().nftTables()
	if err != nil {
		if nftUnusable(err) {
			return res, nil, nil
		}
		return nil, nil, err
	}
	var changes []nftFamilyChange
	xtBefore := map[Family]State{}
	if xtToo {
		if changes, err = in.withXtablesRemoval(tables, nil, xtBefore); err != nil {
			return nil, nil, err
		}
	}
	for _, f := range families {
		if !slices.Contains(tables, nftTableRef{tableFamily(f), nftTable}) {
			continue
		}
		i := slices.IndexFunc(changes, func(ch nftFamilyChange) bool { return ch.family == f })
		if i < 0 {
			changes = append(changes, nftFamilyChange{family: f})
			i = len(changes) - 1
		}
		changes[i].delete = true
	}
	for _, ch := range changes {
		fr := FamilyResult{Family: ch.family, Backend: NFTablesBackend, Before: newState(), After: newState()}
		fr.applied([]byte(ch.text()))
		if xt, ok := xtBefore[ch.family]; ok {
			fr.Before = xt
		}
		if ch.delete {
			cur, err := in.system().readNFT(ch.family)
			if err != nil {
				return nil, nil, err
			}
			for _, r := range cur.Rules {
				fr.Before.addRule(nftTable, r.Chain, r.Text)
			}
		}
		res.Families = append(res.Families, fr)
	}
	return res, changes, nil
}

// uninstallNFT removes our nftables tables, and with xtToo the rules of ours from iptables-nft's
// tables, in one transaction.
func (in *Installer) uninstallNFT(families []Family, xtToo bool) (*Result, error) {
	res, changes, err := in.nftRemoval(families, xtToo)
	if err != nil || len(changes) == 0 {
		return res, err
	}
	return res, in.system().commitNFT(changes)
}

// checkNFT reports whether our tables hold exactly what Build makes of cfg.
func (in *Installer) checkNFT(cfg *api.TransparentProxyConfig, host Host) error {
	var errs []error
	for _, f := range Families(cfg) {
		if f == IPv6 && !in.system().ipv6Available() {
			continue
		}
		st, err := in.system().readNFT(f)
		if err == nil && !st.satisfies(NFTables(Build(cfg, host, f))) {
			if st == nil {
				err = fmt.Errorf("%s: no nftables table of ours", f)
			} else {
				err = fmt.Errorf("%s: our nftables table does not hold the rules of the configuration (%d rules present)", f, len(st.Rules))
			}
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

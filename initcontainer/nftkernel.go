package initcontainer

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// The nftables backend talks to nf_tables over netlink from the calling thread's network
// namespace: it reads through github.com/google/nftables and writes in batches of its own
// (nftBatch), with google/nftables' expressions. No nft program is run.

// nftTableRef is a table of any family.
type nftTableRef struct {
	family nftables.TableFamily
	name   string
}

// iptablesTableNames are the tables iptables-nft makes in the ip and ip6 families.
var iptablesTableNames = []string{"filter", "nat", "mangle", "raw", "security"}

func tableFamily(f Family) nftables.TableFamily {
	return nftables.TableFamily(nftProto(f))
}

// nftState is one family's table of ours as the kernel holds it.
type nftState struct {
	Chains []NFTChain
	Rules  []NFTRule
	// Unknown counts what it holds that the backend does not make, a rule changed by hand say: the
	// table is then replaced.
	Unknown int
}

// satisfies reports whether the table holds exactly desired's chains and rules.
func (s *nftState) satisfies(desired NFTRuleset) bool {
	if s == nil || s.Unknown > 0 {
		return false
	}
	byName := func(a, b NFTChain) int { return strings.Compare(a.Name, b.Name) }
	have, want := slices.SortedFunc(slices.Values(s.Chains), byName), slices.SortedFunc(slices.Values(desired.Chains), byName)
	if !slices.Equal(have, want) {
		return false
	}
	texts := func(rules []NFTRule) map[string][]string {
		out := map[string][]string{}
		for _, r := range rules {
			out[r.Chain] = append(out[r.Chain], r.Text)
		}
		return out
	}
	h, w := texts(s.Rules), texts(desired.Rules)
	for chain, rules := range w {
		if !slices.Equal(h[chain], rules) {
			return false
		}
	}
	return len(h) == len(w)
}

// stateOf counts a table's chains and rules the way State counts iptables': for reports.
func nftStateOf(chains []NFTChain, rules []NFTRule) State {
	st := newState()
	for _, c := range chains {
		st.Chains[nftTable] = append(st.Chains[nftTable], c.Name)
	}
	for _, r := range rules {
		st.addRule(nftTable, r.Chain, r.Text)
	}
	return st
}

// nftConn is a google/nftables connection for reading in the calling thread's network namespace,
// its requests sent over a plain blocking netlink socket (nftExchange); close closes the socket.
func nftConn() (c *nftables.Conn, close func(), err error) {
	fd, err := nftSocket()
	if err != nil {
		return nil, nil, err
	}
	// Lasting: one library connection for every request, each of which otherwise makes its own
	// (and seeds a random source for its sequence numbers).
	c, err = nftables.New(nftables.AsLasting(), nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if req == nil {
			return nil, io.EOF // no more answers
		}
		return nftExchange(fd, req)
	}))
	if err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("nftables: %w", err)
	}
	return c, func() { unix.Close(fd) }, nil
}

// nftUnusable reports errors that say nf_tables cannot be reached at all: a kernel without it.
func nftUnusable(err error) bool {
	return errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP)
}

// readNFTTable reads the family's table of ours; nil when there is none.
func readNFTTable(f Family) (*nftState, error) {
	c, closeConn, err := nftConn()
	if err != nil {
		return nil, err
	}
	defer closeConn()
	t := &nftables.Table{Name: nftTable, Family: tableFamily(f)}
	chains, err := c.ListChainsOfTableFamily(t.Family)
	if err != nil {
		return nil, fmt.Errorf("%s: nftables: listing chains: %w", f, err)
	}
	sets, err := readPortSets(c, t)
	if err != nil {
		return nil, fmt.Errorf("%s: nftables: %w", f, err)
	}
	rules, err := nftRules(f)
	if err != nil {
		return nil, err
	}
	st := &nftState{}
	found := false
	for _, ch := range chains {
		if ch.Table.Name != nftTable {
			continue
		}
		found = true
		chain, known := nftChainOf(ch)
		if !known {
			st.Unknown++
		}
		st.Chains = append(st.Chains, chain)
		for _, r := range rules {
			if r.table != nftTable || r.chain != ch.Name {
				continue
			}
			err := r.err
			if err == nil && r.unknown > 0 {
				err = fmt.Errorf("%w: %d expressions of kinds it makes none of", errNotOurs, r.unknown)
			}
			var nr NFTRule
			if err == nil {
				nr, err = decodeRule(f, r.exprs, r.udata, sets)
			}
			if err != nil {
				st.Unknown++
				nr.Text = "# not understood: " + err.Error()
			}
			nr.Chain = ch.Name
			st.Rules = append(st.Rules, nr)
		}
	}
	if !found && len(sets) == 0 {
		// A table of ours with nothing in it still is one: listing its chains cannot tell.
		exists, err := nftTableExists(c, t)
		if err != nil || !exists {
			return nil, err
		}
	}
	return st, nil
}

func nftTableExists(c *nftables.Conn, t *nftables.Table) (bool, error) {
	tables, err := c.ListTablesOfFamily(t.Family)
	if err != nil {
		return false, fmt.Errorf("nftables: listing tables: %w", err)
	}
	return slices.ContainsFunc(tables, func(x *nftables.Table) bool { return x.Name == t.Name }), nil
}

// readPortSets reads the elements of the table's anonymous sets, by name.
func readPortSets(c *nftables.Conn, t *nftables.Table) (map[string]nftPortSet, error) {
	sets, err := c.GetSets(t)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("listing sets: %w", err)
	}
	out := map[string]nftPortSet{}
	for _, s := range sets {
		elements, err := c.GetSetElements(s)
		if err != nil {
			return nil, fmt.Errorf("reading set %s: %w", s.Name, err)
		}
		out[s.Name] = elements
	}
	return out, nil
}

// nftChainOf reads a chain's kind; known is false for what the backend does not make, such as a
// base chain whose policy is drop.
func nftChainOf(ch *nftables.Chain) (NFTChain, bool) {
	c := NFTChain{Name: ch.Name}
	if ch.Hooknum == nil {
		return c, ch.Type == ""
	}
	c.Type = string(ch.Type)
	switch *ch.Hooknum {
	case *nftables.ChainHookPrerouting:
		c.Hook = "prerouting"
	case *nftables.ChainHookOutput:
		c.Hook = "output"
	default:
		c.Hook = fmt.Sprint(*ch.Hooknum)
	}
	if ch.Priority != nil {
		c.Priority = int32(*ch.Priority)
	}
	return c, ch.Policy == nil || *ch.Policy == nftables.ChainPolicyAccept
}

// nftFamilyChange is one family's part of a transaction: our table deleted when it exists, made
// anew when add is set, and objects of ours in iptables-nft's tables deleted.
type nftFamilyChange struct {
	family Family
	delete bool
	add    *NFTRuleset
	xt     []xtDeletion
}

// xtDeletion is an object of iptables-nft's tables to delete: a rule by its handle, a chain, or,
// with no chain, a table.
type xtDeletion struct {
	table, chain string
	handle       uint64
}

// text spells the change in nft's syntax, for --verbose and uninstall's dry run.
func (c nftFamilyChange) text() string {
	var b strings.Builder
	fam := nftFamily(c.family)
	if c.delete {
		fmt.Fprintf(&b, "delete table %s %s\n", fam, nftTable)
	}
	if c.add != nil {
		b.WriteString(c.add.Text())
	}
	for _, d := range c.xt {
		switch {
		case d.handle != 0:
			fmt.Fprintf(&b, "delete rule %s %s %s handle %d\n", fam, d.table, d.chain, d.handle)
		case d.chain != "":
			fmt.Fprintf(&b, "delete chain %s %s %s\n", fam, d.table, d.chain)
		default:
			fmt.Fprintf(&b, "delete table %s %s\n", fam, d.table)
		}
	}
	return b.String()
}

// commitNFT applies the changes in one netlink transaction: all of them, or none.
func commitNFT(changes []nftFamilyChange) error {
	b := newNFTBatch()
	var err error
	for _, ch := range changes {
		if err = addNFTChange(b, ch); err != nil {
			break
		}
	}
	if err == nil {
		err = b.send()
	}
	if err != nil {
		return fmt.Errorf("nftables transaction, nothing changed: %w", err)
	}
	return nil
}

func addNFTChange(b *nftBatch, ch nftFamilyChange) error {
	fam := nftProto(ch.family)
	if ch.delete {
		b.delTable(fam, nftTable)
	}
	if ch.add != nil {
		if err := addNFTTable(b, fam, *ch.add); err != nil {
			return err
		}
	}
	// Rules first: a chain still jumped to cannot go.
	for _, d := range ch.xt {
		if d.handle != 0 {
			b.delRule(fam, d.table, d.chain, d.handle)
		}
	}
	for _, d := range ch.xt {
		switch {
		case d.handle != 0:
		case d.chain != "":
			b.delChain(fam, d.table, d.chain)
		default:
			b.delTable(fam, d.table)
		}
	}
	return nil
}

func addNFTTable(b *nftBatch, fam byte, rs NFTRuleset) error {
	b.addTable(fam, nftTable)
	for _, ch := range rs.Chains {
		b.addChain(fam, nftTable, ch)
	}
	for _, r := range rs.Rules {
		exprs, elements := r.exprs()
		if elements != nil {
			name, id, err := b.addPortSet(fam, nftTable, elements)
			if err != nil {
				return fmt.Errorf("%s: nftables: the port set of %q: %w", rs.Family, r.Text, err)
			}
			for _, e := range exprs {
				if l, ok := e.(*expr.Lookup); ok {
					l.SetName, l.SetID = name, id
				}
			}
		}
		if err := b.addRule(fam, nftTable, r.Chain, exprs, r.userData()); err != nil {
			return fmt.Errorf("%s: nftables: %q: %w", rs.Family, r.Text, err)
		}
	}
	return nil
}

// xtNFTState is what of ours iptables-nft's tables of a family hold, and what else matters to
// removing it.
type xtNFTState struct {
	tables []*xtNFTTable
}

type xtNFTTable struct {
	name       string
	chains     []*xtNFTChain
	namedSets  int
	madeByUs   bool
	madeChains []string
}

type xtNFTChain struct {
	name   string
	base   bool
	accept bool
	ours   []uint64 // handles of our rules
	others int
}

// empty reports whether a built-in chain lets everything through and holds no rules, or only ours
// when ours go.
func (c *xtNFTChain) empty(oursGo bool) bool {
	return c.base && c.accept && c.others == 0 && (oursGo || len(c.ours) == 0)
}

// readXtablesNFT reads the family's iptables-nft tables for what is ours, as ourRule tells it.
func readXtablesNFT(f Family, names []string) (*xtNFTState, error) {
	c, closeConn, err := nftConn()
	if err != nil {
		return nil, err
	}
	defer closeConn()
	fam := tableFamily(f)
	chains, err := c.ListChainsOfTableFamily(fam)
	if err != nil {
		return nil, fmt.Errorf("%s: nftables: listing chains: %w", f, err)
	}
	rules, err := nftRules(f)
	if err != nil {
		return nil, err
	}
	st := &xtNFTState{}
	for _, name := range names {
		t := &xtNFTTable{name: name}
		nt := &nftables.Table{Name: name, Family: fam}
		for _, ch := range chains {
			if ch.Table.Name != name {
				continue
			}
			xc := &xtNFTChain{name: ch.Name, base: ch.Hooknum != nil, accept: ch.Policy == nil || *ch.Policy == nftables.ChainPolicyAccept}
			switch {
			case ch.Name == markerTable:
				t.madeByUs = true
			case strings.HasPrefix(ch.Name, markerPrefix):
				t.madeChains = append(t.madeChains, strings.TrimPrefix(ch.Name, markerPrefix))
			}
			for _, r := range rules {
				switch {
				case r.table != name || r.chain != ch.Name:
				case isOurChain(ch.Name) || r.err == nil && xtRuleIsOurs(r.exprs, r.udata):
					xc.ours = append(xc.ours, r.handle)
				default:
					xc.others++ // a rule that cannot be read is not taken for ours
				}
			}
			t.chains = append(t.chains, xc)
		}
		if len(t.chains) > 0 {
			sets, err := c.GetSets(nt)
			if err != nil {
				return nil, fmt.Errorf("%s: nftables: listing the sets of %s: %w", f, name, err)
			}
			for _, s := range sets {
				if !s.Anonymous {
					t.namedSets++
				}
			}
		}
		if len(t.chains) > 0 {
			st.tables = append(st.tables, t)
		}
	}
	return st, nil
}

// xtRuleIsOurs tells a rule of ours in a built-in chain: it jumps to a chain of ours or bears our
// marker, as an iptables comment match or as nft's comment.
func xtRuleIsOurs(exprs []expr.Any, udata []byte) bool {
	for _, e := range exprs {
		switch e := e.(type) {
		case *expr.Verdict:
			if (e.Kind == expr.VerdictJump || e.Kind == expr.VerdictGoto) && isOurChain(e.Chain) {
				return true
			}
		case *expr.Match:
			if c, ok := e.Info.(*xt.Comment); ok && strings.HasPrefix(string(*c), Marker) {
				return true
			}
		}
	}
	comment, _ := udataComment(udata)
	return strings.HasPrefix(comment, Marker)
}

// removal is what deletes, with oursGo, every rule and chain of ours, and then the tables and
// built-in chains install made (markers say which) that nothing else is in.
func (s *xtNFTState) removal(oursGo bool) []xtDeletion {
	var out []xtDeletion
	for _, t := range s.tables {
		var dels []xtDeletion
		tableEmpty := t.namedSets == 0
		for _, c := range t.chains {
			if oursGo {
				for _, h := range c.ours {
					dels = append(dels, xtDeletion{table: t.name, chain: c.name, handle: h})
				}
			}
			if isOurChain(c.name) && !oursGo || !isOurChain(c.name) && !c.empty(oursGo) {
				tableEmpty = false
			}
		}
		if t.madeByUs && tableEmpty {
			out = append(out, xtDeletion{table: t.name})
			continue
		}
		for _, c := range t.chains {
			made := c.empty(oursGo) && (t.madeByUs || slices.Contains(t.madeChains, c.name))
			if isOurChain(c.name) && oursGo || made {
				dels = append(dels, xtDeletion{table: t.name, chain: c.name})
			}
		}
		out = append(out, dels...)
	}
	return out
}

package initcontainer

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// encoded is a rule's expressions with its port set named as the kernel names anonymous sets.
func encoded(r NFTRule) ([]expr.Any, []byte, map[string]nftPortSet) {
	exprs, set := r.exprs()
	sets := map[string]nftPortSet{}
	for _, e := range exprs {
		if l, ok := e.(*expr.Lookup); ok {
			l.SetName = "__set0"
			sets[l.SetName] = set
		}
	}
	return exprs, r.userData(), sets
}

// TestNFTRulesDecodeAsEncoded reads every rule of every scenario back from its expressions, as
// re-runs read the kernel's: the same rule, in the same words.
func TestNFTRulesDecodeAsEncoded(t *testing.T) {
	for _, s := range scenarios {
		for _, f := range Families(s.config()) {
			for _, r := range NFTables(Build(s.config(), testHost, f)).Rules {
				exprs, udata, sets := encoded(r)
				got, err := decodeRule(f, exprs, udata, sets)
				if err != nil || got.Text != r.Text {
					t.Errorf("%s %s: %s\nread back as %q (%v)", s.name, f, r.Text, got.Text, err)
				}
			}
		}
	}
}

// TestNFTRulesNotOursAreNotRead: expressions this version does not make are refused, so that the
// table is replaced rather than taken for what it should be.
func TestNFTRulesNotOursAreNotRead(t *testing.T) {
	var rule NFTRule
	for _, r := range NFTables(Build(everything(), testHost, IPv4)).Rules {
		if r.Purpose == "proxy traffic to the pod address goes inbound" {
			rule = r
		}
	}
	for name, change := range map[string]func([]expr.Any) []expr.Any{
		"an expression more":     func(e []expr.Any) []expr.Any { return append(e, &expr.Counter{}) },
		"the verdict left out":   func(e []expr.Any) []expr.Any { return e[:len(e)-1] },
		"another register":       func(e []expr.Any) []expr.Any { e[0].(*expr.Meta).Register = 2; return e },
		"another comparison":     func(e []expr.Any) []expr.Any { e[1].(*expr.Cmp).Op = expr.CmpOpNeq; return e },
		"nothing at all":         func([]expr.Any) []expr.Any { return nil },
		"a verdict in the midst": func(e []expr.Any) []expr.Any { return append([]expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}, e...) },
	} {
		exprs, udata, sets := encoded(rule)
		if _, err := decodeRule(IPv4, change(exprs), udata, sets); !errors.Is(err, errNotOurs) {
			t.Errorf("%s: read as ours (%v)", name, err)
		}
	}
}

// marshalExprs spells expressions as the kernel lists a rule's (NFTA_RULE_EXPRESSIONS).
func marshalExprs(t testing.TB, f Family, exprs []expr.Any) []byte {
	t.Helper()
	var b []byte
	for _, e := range exprs {
		data, err := expr.Marshal(nftProto(f), e)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, nl.NewRtAttr(unix.NFTA_LIST_ELEM|unix.NLA_F_NESTED, data).Serialize()...)
	}
	return b
}

// FuzzNFTRuleRead reads a rule back as from the kernel: parsing its expressions never panics, and
// what it reads as a rule of ours reads the same once written again.
func FuzzNFTRuleRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, ipv6 bool, list, udata []byte) {
		family := IPv4
		if ipv6 {
			family = IPv6
		}
		exprs, unknown, err := parseExprs(nftProto(family), list)
		if err != nil || unknown > 0 {
			return
		}
		r, err := decodeRule(family, exprs, udata, nil)
		if err != nil {
			return
		}
		again, set := r.exprs()
		if set != nil {
			t.Fatalf("%q reads as a rule with a port set, from no set", r.Text)
		}
		reread, _, err := parseExprs(nftProto(family), marshalExprs(t, family, again))
		if err != nil {
			t.Fatalf("%q written again does not parse: %v", r.Text, err)
		}
		back, err := decodeRule(family, reread, r.userData(), nil)
		if err != nil || back.Text != r.Text {
			t.Fatalf("%q written again reads as %q (%v)", r.Text, back.Text, err)
		}
	})
}

// TestNFTAttrsGet reads attributes in place as the kernel lays them out: aligned to four bytes,
// nested ones flagged, and a malformed length ends the search rather than reading past it.
func TestNFTAttrsGet(t *testing.T) {
	attr := func(typ uint16, value string) []byte {
		b := binary.NativeEndian.AppendUint16(nil, uint16(unix.SizeofNlAttr+len(value)))
		b = binary.NativeEndian.AppendUint16(b, typ)
		b = append(b, value...)
		for len(b)%unix.NLA_ALIGNTO != 0 {
			b = append(b, 0)
		}
		return b
	}
	attrs := nftAttrs(slices.Concat(attr(unix.NFTA_RULE_TABLE, "meshinit\x00"), attr(unix.NFTA_RULE_CHAIN, "abc\x00x"),
		attr(unix.NLA_F_NESTED|unix.NFTA_RULE_EXPRESSIONS, "exprs")))
	for typ, want := range map[uint16]string{unix.NFTA_RULE_TABLE: "meshinit\x00", unix.NFTA_RULE_CHAIN: "abc\x00x",
		unix.NFTA_RULE_EXPRESSIONS: "exprs", unix.NFTA_RULE_HANDLE: ""} {
		if got := string(attrs.get(typ)); got != want {
			t.Errorf("attribute %d: %q, want %q", typ, got, want)
		}
	}
	malformed := slices.Concat(attr(unix.NFTA_RULE_TABLE, "t"), []byte{0xff, 0xff, unix.NFTA_RULE_CHAIN, 0})
	if got := nftAttrs(malformed).get(unix.NFTA_RULE_CHAIN); got != nil {
		t.Errorf("a length past the end read %q", got)
	}
}

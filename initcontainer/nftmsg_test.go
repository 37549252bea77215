package initcontainer

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"

	"github.com/meshinit/meshinit/api"
)

// TestNFTBatchSpelledAsByTheLibrary: the batch nftBatch spells is, message by message, the one
// google/nftables' Conn spelled for the same changes and that went to the kernel until nftBatch
// replaced it: every scenario's fresh install in both families (port sets among them), and a change
// that deletes our table, then remakes it, and deletes iptables-nft rules, chains and tables. Only
// the transaction's IDs of anonymous sets are renumbered, the library's counting on from earlier
// batches.
func TestNFTBatchSpelledAsByTheLibrary(t *testing.T) {
	cases := map[string][]nftFamilyChange{}
	for _, s := range scenarios {
		var changes []nftFamilyChange
		for _, f := range Families(s.config()) {
			rs := NFTables(Build(s.config(), testHost, f))
			changes = append(changes, nftFamilyChange{family: f, add: &rs})
		}
		cases["install "+s.name] = changes
	}
	rs := NFTables(Build(everything(), testHost, IPv4))
	cases["re-run and backend move"] = []nftFamilyChange{
		{family: IPv4, delete: true, add: &rs, xt: []xtDeletion{
			{table: "nat", chain: "KUMA_MESH_OUTBOUND"}, {table: "nat", chain: "OUTPUT", handle: 7},
			{table: "raw"}, {table: "nat", chain: "PREROUTING", handle: 1 << 40},
		}},
		{family: IPv6, delete: true, xt: []xtDeletion{{table: "mangle", chain: "PREROUTING", handle: 3}, {table: "mangle"}}},
	}
	seen := map[uint16]int{}
	for name, changes := range cases {
		want := libraryBatch(t, changes)
		b := newNFTBatch()
		for _, ch := range changes {
			if err := addNFTChange(b, ch); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		got, err := b.finish()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		g, w := normalisedMessages(t, got), normalisedMessages(t, want)
		if len(g) != len(w) {
			t.Errorf("%s: %d messages, the library spelled %d", name, len(g), len(w))
			continue
		}
		for i := range w {
			seen[w[i].Header.Type&0xff]++
			if g[i].Header != w[i].Header || !bytes.Equal(g[i].Data, w[i].Data) {
				t.Errorf("%s: message %d (%s)\n got %+v % x\nwant %+v % x", name, i+1, nftOp(w[i].Header.Type),
					g[i].Header, g[i].Data, w[i].Header, w[i].Data)
				break
			}
		}
	}
	// The comparison covers every kind of message the backend sends.
	for _, typ := range []uint16{unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_NEWSET, unix.NFT_MSG_NEWSETELEM,
		unix.NFT_MSG_NEWRULE, unix.NFT_MSG_DELTABLE, unix.NFT_MSG_DELCHAIN, unix.NFT_MSG_DELRULE} {
		if seen[typ] == 0 {
			t.Errorf("no message %s compared", nftOp(typ))
		}
	}
}

// TestNFTBatchRefusesAnOversizedAttribute: an attribute longer than netlink's 16-bit length is an
// error, not a length that wraps around. Build's port sets hold at most maxMultiport ports, far
// below it; the encoder does not count on that.
func TestNFTBatchRefusesAnOversizedAttribute(t *testing.T) {
	var ranges api.PortRanges
	for p := uint16(2); p < 40000; p += 2 {
		ranges = append(ranges, api.PortRange{First: p, Last: p})
	}
	b := newNFTBatch()
	if _, _, err := b.addPortSet(unix.NFPROTO_IPV4, nftTable, portSet(ranges)); err == nil || !strings.Contains(err.Error(), "more than netlink's 65535") {
		t.Fatalf("a set of %d ports: %v, want an error", len(ranges), err)
	}
	if _, err := b.finish(); err == nil {
		t.Fatal("the batch finished")
	}
}

// libraryBatch is the batch as it went to the kernel when google/nftables' Conn spelled it: the
// messages captured from the connection, numbered from 1, only the last asking for an
// acknowledgement and none for an echo.
func libraryBatch(t *testing.T, changes []nftFamilyChange) []byte {
	t.Helper()
	batch, err := captureNFT(func(c *nftables.Conn) error {
		for _, ch := range changes {
			if err := libraryChange(c, ch); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i := range batch {
		m := &batch[i]
		m.Header.Sequence, m.Header.PID = uint32(i+1), 0
		m.Header.Flags &^= netlink.Acknowledge | unix.NLM_F_ECHO
		if i == len(batch)-2 {
			m.Header.Flags |= netlink.Acknowledge
		}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// captureNFT runs build on a connection that records the messages it would send, and returns
// them: the batch, between its begin and end messages.
func captureNFT(build func(*nftables.Conn) error) ([]netlink.Message, error) {
	var batch []netlink.Message
	ack := []netlink.Message{{Header: netlink.Header{Type: netlink.Error}, Data: make([]byte, 4)}}
	c, err := nftables.New(nftables.WithTestDial(func(req []netlink.Message) ([]netlink.Message, error) {
		if req == nil {
			// The library reads an acknowledgement per message: nothing was sent yet.
			return ack, nil
		}
		batch = append(batch, req...)
		return nil, nil
	}))
	if err != nil {
		return nil, err
	}
	if err := build(c); err != nil {
		return nil, err
	}
	if err := c.Flush(); err != nil {
		return nil, err
	}
	return batch, nil
}

// libraryChange is addNFTChange as it was spelled through google/nftables' Conn.
func libraryChange(c *nftables.Conn, ch nftFamilyChange) error {
	t := &nftables.Table{Name: nftTable, Family: tableFamily(ch.family)}
	if ch.delete {
		c.DelTable(t)
	}
	if ch.add != nil {
		c.AddTable(t)
		chains := map[string]*nftables.Chain{}
		for _, ch := range ch.add.Chains {
			nc := &nftables.Chain{Name: ch.Name, Table: t}
			if ch.base() {
				nc.Type = nftables.ChainType(ch.Type)
				nc.Hooknum = nftables.ChainHookPrerouting
				if ch.Hook == "output" {
					nc.Hooknum = nftables.ChainHookOutput
				}
				nc.Priority = nftables.ChainPriorityRef(nftables.ChainPriority(ch.Priority))
			}
			chains[ch.Name] = c.AddChain(nc)
		}
		for _, r := range ch.add.Rules {
			exprs, elements := r.exprs()
			if elements != nil {
				set := &nftables.Set{Table: t, Anonymous: true, Constant: true, Interval: true, KeyType: nftables.TypeInetService}
				if err := c.AddSet(set, elements); err != nil {
					return err
				}
				for _, e := range exprs {
					if l, ok := e.(*expr.Lookup); ok {
						l.SetName, l.SetID = set.Name, set.ID
					}
				}
			}
			c.AddRule(&nftables.Rule{Table: t, Chain: chains[r.Chain], Exprs: exprs, UserData: r.userData()})
		}
	}
	for _, d := range ch.xt {
		if d.handle != 0 {
			xtT := &nftables.Table{Name: d.table, Family: t.Family}
			if err := c.DelRule(&nftables.Rule{Table: xtT, Chain: &nftables.Chain{Name: d.chain, Table: xtT}, Handle: d.handle}); err != nil {
				return err
			}
		}
	}
	for _, d := range ch.xt {
		xtT := &nftables.Table{Name: d.table, Family: t.Family}
		switch {
		case d.handle != 0:
		case d.chain != "":
			c.DelChain(&nftables.Chain{Name: d.chain, Table: xtT})
		default:
			c.DelTable(xtT)
		}
	}
	return nil
}

// normalisedMessages splits a batch into its messages, with the anonymous sets' IDs renumbered in
// the order they first appear (in the set, its elements and the rule looking it up).
func normalisedMessages(t *testing.T, batch []byte) []syscall.NetlinkMessage {
	t.Helper()
	msgs, err := syscall.ParseNetlinkMessage(bytes.Clone(batch))
	if err != nil {
		t.Fatal(err)
	}
	ids := map[uint32]uint32{}
	renumber := func(v []byte) {
		id := binary.BigEndian.Uint32(v)
		if _, ok := ids[id]; !ok {
			ids[id] = uint32(len(ids) + 1)
		}
		binary.BigEndian.PutUint32(v, ids[id])
	}
	for _, m := range msgs {
		if len(m.Data) < nfgenmsgLen {
			t.Fatalf("message %d: %d bytes of data", m.Header.Seq, len(m.Data))
		}
		attrs := m.Data[nfgenmsgLen:]
		switch m.Header.Type & 0xff {
		case unix.NFT_MSG_NEWSET:
			eachAttr(attrs, func(typ uint16, v []byte) {
				if typ == unix.NFTA_SET_ID {
					renumber(v)
				}
			})
		case unix.NFT_MSG_NEWSETELEM:
			eachAttr(attrs, func(typ uint16, v []byte) {
				if typ == unix.NFTA_SET_ELEM_LIST_SET_ID {
					renumber(v)
				}
			})
		case unix.NFT_MSG_NEWRULE:
			eachAttr(attrs, func(typ uint16, list []byte) {
				if typ != unix.NFTA_RULE_EXPRESSIONS {
					return
				}
				eachAttr(list, func(_ uint16, e []byte) {
					var name string
					eachAttr(e, func(typ uint16, v []byte) {
						switch {
						case typ == unix.NFTA_EXPR_NAME:
							name = string(v)
						case typ == unix.NFTA_EXPR_DATA && name == "lookup\x00":
							eachAttr(v, func(typ uint16, v []byte) {
								if typ == unix.NFTA_LOOKUP_SET_ID {
									renumber(v)
								}
							})
						}
					})
				})
			})
		}
	}
	return msgs
}

// nfgenmsgLen is the size of the header every nf_tables message's attributes follow.
const nfgenmsgLen = 4

// eachAttr hands fn each attribute of b, its value a slice of b.
func eachAttr(b []byte, fn func(typ uint16, v []byte)) {
	for len(b) >= unix.SizeofNlAttr {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofNlAttr || n > len(b) {
			panic(fmt.Sprintf("an attribute of %d bytes in %d", n, len(b)))
		}
		fn(binary.NativeEndian.Uint16(b[2:])&^(unix.NLA_F_NESTED|unix.NLA_F_NET_BYTEORDER), b[unix.SizeofNlAttr:n])
		b = b[min(len(b), (n+3)&^3):]
	}
}

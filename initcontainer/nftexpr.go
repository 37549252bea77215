package initcontainer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/meshinit/meshinit/api"
)

// A rule's expressions are those nft makes of the rule's text, in the text's order, so that nft
// lists our rules as NFTRule.Text spells them (TestNFTablesListsWhatWasWritten). Every value goes
// through register 1.
const reg = 1

// ifnameSize is IFNAMSIZ: an interface name is compared with its trailing zeros, a name prefix
// (iptables' +, nft's *) without.
const ifnameSize = 16

// Offsets in the network header of the addresses.
var addrOffsets = map[Family]struct{ src, dst uint32 }{IPv4: {12, 16}, IPv6: {8, 24}}

var protocols = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP}

// nftPortSet is the anonymous set a rule's port match looks up, as interval elements.
type nftPortSet []nftables.SetElement

// exprs are the rule's expressions, and the elements of the port set it looks up, if any; the
// lookup names no set yet (see lookupSet).
func (r NFTRule) exprs() ([]expr.Any, nftPortSet) {
	m := r.match
	var e []expr.Any
	var set nftPortSet
	cmp := func(op expr.CmpOp, data []byte) { e = append(e, &expr.Cmp{Op: op, Register: reg, Data: data}) }
	meta := func(key expr.MetaKey) { e = append(e, &expr.Meta{Key: key, Register: reg}) }
	if m.in != "" {
		meta(expr.MetaKeyIIFNAME)
		cmp(expr.CmpOpEq, ifname(m.in))
	}
	if m.out != "" {
		meta(expr.MetaKeyOIFNAME)
		cmp(expr.CmpOpEq, ifname(m.out))
	}
	addr := func(offset uint32, p netip.Prefix, op expr.CmpOp) {
		a := p.Masked().Addr().AsSlice()
		e = append(e, &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(a))})
		if !p.IsSingleIP() {
			mask := netip.PrefixFrom(netip.IPv6Unspecified(), 0).Addr().AsSlice()[:len(a)]
			for i := range p.Bits() {
				mask[i/8] |= 0x80 >> (i % 8)
			}
			e = append(e, &expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: uint32(len(a)), Mask: mask, Xor: make([]byte, len(a))})
		}
		cmp(op, a)
	}
	if m.src.IsValid() {
		addr(addrOffsets[r.family].src, m.src, expr.CmpOpEq)
	}
	if m.dst.IsValid() {
		op := expr.CmpOpEq
		if m.notDst {
			op = expr.CmpOpNeq
		}
		addr(addrOffsets[r.family].dst, m.dst, op)
	}
	if m.proto != "" {
		meta(expr.MetaKeyL4PROTO)
		cmp(expr.CmpOpEq, []byte{protocols[m.proto]})
	}
	port := func(offset uint32) {
		e = append(e, &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2})
	}
	switch {
	case m.sport != 0:
		port(0)
		cmp(expr.CmpOpEq, be16(m.sport))
	case m.dport != 0:
		port(2)
		cmp(expr.CmpOpEq, be16(m.dport))
	case len(m.dports) > 0:
		port(2)
		switch merged := mergePorts(m.dports); {
		case len(merged) > 1:
			set = portSet(merged)
			e = append(e, &expr.Lookup{SourceRegister: reg})
		case merged[0].First == merged[0].Last:
			cmp(expr.CmpOpEq, be16(merged[0].First))
		default:
			cmp(expr.CmpOpGte, be16(merged[0].First))
			cmp(expr.CmpOpLte, be16(merged[0].Last))
		}
	}
	if m.owner != nil {
		meta(expr.MetaKeySKUID)
		if m.owner.First == m.owner.Last {
			cmp(expr.CmpOpEq, binary.NativeEndian.AppendUint32(nil, m.owner.First))
		} else {
			// Compared as big-endian numbers, as cmp compares bytes.
			e = append(e, &expr.Byteorder{SourceRegister: reg, DestRegister: reg, Op: expr.ByteorderHton, Len: 4, Size: 4})
			cmp(expr.CmpOpGte, binary.BigEndian.AppendUint32(nil, m.owner.First))
			cmp(expr.CmpOpLte, binary.BigEndian.AppendUint32(nil, m.owner.Last))
		}
	}
	if m.ctInvalid {
		e = append(e, &expr.Ct{Register: reg, Key: expr.CtKeySTATE},
			&expr.Bitwise{SourceRegister: reg, DestRegister: reg, Len: 4, Mask: binary.NativeEndian.AppendUint32(nil, ctStateInvalid), Xor: make([]byte, 4)})
		cmp(expr.CmpOpNeq, make([]byte, 4))
	}
	if m.limited {
		e = append(e, &expr.Limit{Type: expr.LimitTypePkts, Rate: 10, Unit: expr.LimitTimeMinute, Burst: 5})
	}
	t := m.target
	switch t.verdict {
	case verdictJump:
		e = append(e, &expr.Verdict{Kind: expr.VerdictJump, Chain: t.chain})
	case verdictReturn:
		e = append(e, &expr.Verdict{Kind: expr.VerdictReturn})
	case verdictDrop:
		e = append(e, &expr.Verdict{Kind: expr.VerdictDrop})
	case verdictAccept:
		e = append(e, &expr.Verdict{Kind: expr.VerdictAccept})
	case verdictMapToSelf:
		n := len(r.family.Loopback().Addr().AsSlice())
		e = append(e, &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: addrOffsets[r.family].dst, Len: uint32(n)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(nftProto(r.family)), RegAddrMin: reg, RegAddrMax: reg})
	case verdictRedirect:
		e = append(e, &expr.Immediate{Register: reg, Data: be16(t.port)},
			&expr.Redir{RegisterProtoMin: reg, RegisterProtoMax: reg, Flags: natProtoSpecified})
	case verdictCT:
		e = append(e, &expr.Immediate{Register: reg, Data: binary.NativeEndian.AppendUint16(nil, t.zone)},
			&expr.Ct{Register: reg, SourceRegister: true, Key: expr.CtKeyZONE})
	case verdictLog:
		e = append(e, &expr.Log{Key: 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_LEVEL, Data: []byte(t.prefix), Level: expr.LogLevel(t.level)})
	}
	return e, set
}

// userData is the rule's comment as nft keeps it.
func (r NFTRule) userData() []byte { return commentUserData(r.comment) }

// commentUserData is a comment as nft keeps it in a rule's user data.
func commentUserData(comment string) []byte {
	if comment == "" {
		return nil
	}
	return userdata.AppendString(nil, userdata.TypeComment, comment)
}

// udataComment reads the comment of a rule's user data: type-length-value records, the comment's
// value a string with its terminating zero. google/nftables' reader panics on a record longer than
// what is left.
func udataComment(udata []byte) (string, bool) {
	for len(udata) >= 2 {
		typ, n := udata[0], int(udata[1])
		if len(udata) < 2+n {
			return "", false
		}
		if userdata.Type(typ) == userdata.TypeComment {
			v := udata[2 : 2+n]
			if n == 0 || v[n-1] != 0 {
				return "", false
			}
			return string(v[:n-1]), true
		}
		udata = udata[2+n:]
	}
	return "", false
}

const (
	ctStateInvalid    = 1 // NF_CT_STATE_INVALID_BIT
	natProtoSpecified = 2 // NF_NAT_RANGE_PROTO_SPECIFIED
)

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func ifname(name string) []byte {
	if prefix, ok := strings.CutSuffix(name, "+"); ok {
		return []byte(prefix)
	}
	b := make([]byte, ifnameSize)
	copy(b, name)
	return b
}

func nftProto(f Family) byte {
	if f == IPv6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// portSet makes interval elements of merged ranges, as nft does: each range is its first port and,
// flagged as an end, the port after its last; the set starts with an end at 0.
func portSet(merged api.PortRanges) nftPortSet {
	set := nftPortSet{{Key: be16(0), IntervalEnd: true}}
	for _, r := range merged {
		if r.First == 0 {
			set = set[1:]
		}
		set = append(set, nftables.SetElement{Key: be16(r.First)})
		if r.Last < 65535 {
			set = append(set, nftables.SetElement{Key: be16(r.Last + 1), IntervalEnd: true})
		}
	}
	return set
}

// ranges reads interval elements back into port ranges, in order.
func (s nftPortSet) ranges() (api.PortRanges, error) {
	sorted := slices.Clone(s)
	slices.SortFunc(sorted, func(a, b nftables.SetElement) int { return slices.Compare(a.Key, b.Key) })
	var out api.PortRanges
	open := false
	for _, el := range sorted {
		if len(el.Key) != 2 {
			return nil, fmt.Errorf("a set element of %d bytes, not a port", len(el.Key))
		}
		p := binary.BigEndian.Uint16(el.Key)
		switch {
		case el.IntervalEnd && open:
			if p == 0 || p-1 < out[len(out)-1].First {
				return nil, errors.New("an interval that ends before it starts")
			}
			out[len(out)-1].Last, open = p-1, false
		case el.IntervalEnd && p != 0:
			return nil, errors.New("an interval end that starts nothing")
		case el.IntervalEnd:
		case open:
			return nil, errors.New("an interval that starts inside another")
		default:
			out, open = append(out, api.PortRange{First: p, Last: 65535}), true
		}
	}
	return out, nil
}

// errNotOurs says that expressions are not a rule the nftables backend makes.
var errNotOurs = errors.New("not a rule meshinit makes")

// decodeRule reads a rule of our table back: its expressions, as the kernel lists them, into the
// match they were made of, and its comment from its user data. sets holds the elements of the
// table's anonymous sets by name. Anything else than what exprs makes is an error: the rule was
// not made by this version, and is replaced.
func decodeRule(f Family, exprs []expr.Any, udata []byte, sets map[string]nftPortSet) (NFTRule, error) {
	d := ruleDecoder{family: f, e: exprs}
	m, err := d.match(sets)
	if err != nil {
		return NFTRule{}, err
	}
	r := NFTRule{family: f, match: m}
	if len(udata) > 0 {
		comment, ok := udataComment(udata)
		if !ok || comment == "" || !slices.Equal(commentUserData(comment), udata) {
			return NFTRule{}, fmt.Errorf("%w: user data that is not a comment alone", errNotOurs)
		}
		r.comment = comment
	}
	r.Text = r.text()
	return r, nil
}

type ruleDecoder struct {
	family Family
	e      []expr.Any
	i      int
}

// peek returns the expression i ahead, nil past the end.
func (d *ruleDecoder) peek(i int) expr.Any {
	if d.i+i < len(d.e) {
		return d.e[d.i+i]
	}
	return nil
}

func (d *ruleDecoder) isMeta(key expr.MetaKey) bool {
	m, ok := d.peek(0).(*expr.Meta)
	return ok && m.Key == key && m.Register == reg && !m.SourceRegister
}

// cmp takes a comparison of register 1 with op, and returns its data.
func (d *ruleDecoder) cmp(op expr.CmpOp, size int) ([]byte, bool) {
	c, ok := d.peek(0).(*expr.Cmp)
	if !ok || c.Op != op || c.Register != reg || len(c.Data) != size {
		return nil, false
	}
	d.i++
	return c.Data, true
}

// payload reports whether the next expression loads len bytes at offset of base into register 1.
func (d *ruleDecoder) payload(base expr.PayloadBase, offset, length uint32) bool {
	p, ok := d.peek(0).(*expr.Payload)
	return ok && p.OperationType == expr.PayloadLoad && p.DestRegister == reg && p.Base == base && p.Offset == offset && p.Len == length
}

func (d *ruleDecoder) match(sets map[string]nftPortSet) (m match, err error) {
	fail := func(what string) error { return fmt.Errorf("%w: %s at expression %d", errNotOurs, what, d.i) }
	for _, iface := range []struct {
		key expr.MetaKey
		to  *string
	}{{expr.MetaKeyIIFNAME, &m.in}, {expr.MetaKeyOIFNAME, &m.out}} {
		if !d.isMeta(iface.key) {
			continue
		}
		d.i++
		c, ok := d.peek(0).(*expr.Cmp)
		if !ok || c.Op != expr.CmpOpEq || c.Register != reg || len(c.Data) == 0 || len(c.Data) > ifnameSize {
			return m, fail("an interface match")
		}
		d.i++
		if *iface.to, ok = ifnameOf(c.Data); !ok {
			return m, fail("an interface name")
		}
	}
	size := uint32(len(d.family.Loopback().Addr().AsSlice()))
	offsets := addrOffsets[d.family]
	if d.payload(expr.PayloadBaseNetworkHeader, offsets.src, size) {
		d.i++
		if m.src, _, err = d.prefix(size); err != nil {
			return m, fail("a source address")
		}
	}
	if d.payload(expr.PayloadBaseNetworkHeader, offsets.dst, size) {
		if _, isNAT := d.peek(1).(*expr.NAT); !isNAT {
			d.i++
			if m.dst, m.notDst, err = d.prefix(size); err != nil {
				return m, fail("a destination address")
			}
		}
	}
	if d.isMeta(expr.MetaKeyL4PROTO) {
		d.i++
		data, ok := d.cmp(expr.CmpOpEq, 1)
		for name, proto := range protocols {
			if ok && data[0] == proto {
				m.proto = name
			}
		}
		if m.proto == "" {
			return m, fail("a protocol")
		}
		if err := d.ports(&m, sets); err != nil {
			return m, fail(err.Error())
		}
	}
	if d.isMeta(expr.MetaKeySKUID) {
		d.i++
		if m.owner, err = d.uids(); err != nil {
			return m, fail("an owner match")
		}
	}
	if ct, ok := d.peek(0).(*expr.Ct); ok && ct.Key == expr.CtKeySTATE && !ct.SourceRegister {
		b, ok := d.peek(1).(*expr.Bitwise)
		if ct.Register != reg || !ok || b.SourceRegister != reg || b.DestRegister != reg || b.Len != 4 ||
			!slices.Equal(b.Mask, binary.NativeEndian.AppendUint32(nil, ctStateInvalid)) || !slices.Equal(b.Xor, make([]byte, 4)) {
			return m, fail("a conntrack state match")
		}
		d.i += 2
		if _, ok := d.cmp(expr.CmpOpNeq, 4); !ok {
			return m, fail("a conntrack state match")
		}
		m.ctInvalid = true
	}
	if l, ok := d.peek(0).(*expr.Limit); ok {
		if *l != (expr.Limit{Type: expr.LimitTypePkts, Rate: 10, Unit: expr.LimitTimeMinute, Burst: 5}) {
			return m, fail("a limit")
		}
		d.i++
		m.limited = true
	}
	if m.target, err = d.action(); err != nil {
		return m, fail(err.Error())
	}
	if d.i != len(d.e) {
		return m, fail("an expression after the verdict")
	}
	return m, nil
}

// prefix reads an address comparison after its payload load: an address, or a network masked to
// its length.
func (d *ruleDecoder) prefix(size uint32) (netip.Prefix, bool, error) {
	bits := int(size) * 8
	if b, ok := d.peek(0).(*expr.Bitwise); ok {
		if b.SourceRegister != reg || b.DestRegister != reg || b.Len != size || len(b.Mask) != int(size) || !slices.Equal(b.Xor, make([]byte, size)) {
			return netip.Prefix{}, false, errNotOurs
		}
		ones := 0
		for ones < bits && b.Mask[ones/8]&(0x80>>(ones%8)) != 0 {
			ones++
		}
		if ones == bits {
			return netip.Prefix{}, false, errNotOurs // a whole address is compared without a mask
		}
		for i := ones; i < bits; i++ {
			if b.Mask[i/8]&(0x80>>(i%8)) != 0 {
				return netip.Prefix{}, false, errNotOurs // not a prefix's mask
			}
		}
		bits = ones
		d.i++
	}
	op := expr.CmpOpEq
	if c, ok := d.peek(0).(*expr.Cmp); ok && c.Op == expr.CmpOpNeq {
		op = expr.CmpOpNeq
	}
	data, ok := d.cmp(op, int(size))
	if !ok {
		return netip.Prefix{}, false, errNotOurs
	}
	a, _ := netip.AddrFromSlice(data)
	p := netip.PrefixFrom(a, bits)
	if p.Masked() != p {
		return netip.Prefix{}, false, errNotOurs
	}
	return p, op == expr.CmpOpNeq, nil
}

// ports reads the port match that may follow a protocol: a source or destination port, a range
// of destination ports, or a set of them.
func (d *ruleDecoder) ports(m *match, sets map[string]nftPortSet) error {
	var offset uint32
	switch {
	case d.payload(expr.PayloadBaseTransportHeader, 0, 2):
	case d.payload(expr.PayloadBaseTransportHeader, 2, 2):
		offset = 2
	default:
		return nil
	}
	d.i++
	if l, ok := d.peek(0).(*expr.Lookup); ok && offset == 2 {
		elements, known := sets[l.SetName]
		if l.SourceRegister != reg || l.IsDestRegSet || l.Invert || !known {
			return errors.New("a port set")
		}
		ranges, err := elements.ranges()
		if err != nil || len(ranges) < 2 || !slices.Equal(mergePorts(ranges), ranges) {
			return errors.New("a port set")
		}
		d.i++
		m.dports = ranges
		return nil
	}
	if first, ok := d.cmp(expr.CmpOpGte, 2); ok && offset == 2 {
		last, ok := d.cmp(expr.CmpOpLte, 2)
		r := api.PortRange{First: binary.BigEndian.Uint16(first)}
		if ok {
			r.Last = binary.BigEndian.Uint16(last)
		}
		if !ok || r.First >= r.Last {
			return errors.New("a port range")
		}
		m.dports = api.PortRanges{r}
		return nil
	}
	data, ok := d.cmp(expr.CmpOpEq, 2)
	if !ok || binary.BigEndian.Uint16(data) == 0 {
		return errors.New("a port")
	}
	if offset == 0 {
		m.sport = binary.BigEndian.Uint16(data)
	} else {
		m.dport = binary.BigEndian.Uint16(data)
	}
	return nil
}

// uids reads the owner's UIDs after their meta load: one, or a range.
func (d *ruleDecoder) uids() (*api.UIDRange, error) {
	if data, ok := d.cmp(expr.CmpOpEq, 4); ok {
		uid := binary.NativeEndian.Uint32(data)
		return uids(api.UIDRange{First: uid, Last: uid}), nil
	}
	b, ok := d.peek(0).(*expr.Byteorder)
	if !ok || *b != (expr.Byteorder{SourceRegister: reg, DestRegister: reg, Op: expr.ByteorderHton, Len: 4, Size: 4}) {
		return nil, errNotOurs
	}
	d.i++
	first, ok := d.cmp(expr.CmpOpGte, 4)
	if !ok {
		return nil, errNotOurs
	}
	last, ok := d.cmp(expr.CmpOpLte, 4)
	if !ok {
		return nil, errNotOurs
	}
	r := api.UIDRange{First: binary.BigEndian.Uint32(first), Last: binary.BigEndian.Uint32(last)}
	if r.First >= r.Last {
		return nil, errNotOurs
	}
	return uids(r), nil
}

// action reads what the rule does, its last expressions.
func (d *ruleDecoder) action() (action, error) {
	switch e := d.peek(0).(type) {
	case *expr.Verdict:
		d.i++
		switch e.Kind {
		case expr.VerdictJump:
			if e.Chain != "" {
				return jump(e.Chain), nil
			}
		case expr.VerdictReturn:
			return targetReturn, nil
		case expr.VerdictDrop:
			return targetDrop, nil
		case expr.VerdictAccept:
			return targetAccept, nil
		}
	case *expr.Payload:
		n, ok := d.peek(1).(*expr.NAT)
		size := uint32(len(d.family.Loopback().Addr().AsSlice()))
		if ok && d.payload(expr.PayloadBaseNetworkHeader, addrOffsets[d.family].dst, size) &&
			*n == (expr.NAT{Type: expr.NATTypeDestNAT, Family: uint32(nftProto(d.family)), RegAddrMin: reg, RegAddrMax: reg}) {
			d.i += 2
			return action{verdict: verdictMapToSelf}, nil
		}
	case *expr.Immediate:
		if e.Register != reg {
			break
		}
		switch next := d.peek(1).(type) {
		case *expr.Redir:
			if len(e.Data) == 2 && *next == (expr.Redir{RegisterProtoMin: reg, RegisterProtoMax: reg, Flags: natProtoSpecified}) {
				d.i += 2
				return redirectTo(binary.BigEndian.Uint16(e.Data)), nil
			}
		case *expr.Ct:
			// google/nftables reads a ct set's source register back as no register at all.
			set := *next == (expr.Ct{Register: reg, SourceRegister: true, Key: expr.CtKeyZONE}) || *next == (expr.Ct{Key: expr.CtKeyZONE})
			if len(e.Data) == 2 && set {
				d.i += 2
				return conntrackZone(binary.NativeEndian.Uint16(e.Data)), nil
			}
		}
	case *expr.Log:
		if e.Key == 1<<unix.NFTA_LOG_PREFIX|1<<unix.NFTA_LOG_LEVEL && e.Level <= 7 && e.Flags == 0 {
			d.i++
			return logTo(string(e.Data), api.LogLevel(e.Level)), nil
		}
	}
	return action{}, errors.New("an action")
}

// ifnameOf reads back an interface name compared: padded with zeros to IFNAMSIZ, or a prefix.
func ifnameOf(data []byte) (string, bool) {
	if len(data) < ifnameSize {
		if slices.Contains(data, 0) {
			return "", false
		}
		return string(data) + "+", true
	}
	n := slices.Index(data, 0)
	if n <= 0 || slices.ContainsFunc(data[n:], func(b byte) bool { return b != 0 }) {
		return "", false
	}
	return string(data[:n]), true
}

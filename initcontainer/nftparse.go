package initcontainer

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// nftRuleMsg is a rule as the kernel lists it.
type nftRuleMsg struct {
	table, chain string
	handle       uint64
	exprs        []expr.Any
	// unknown counts expressions of kinds this package does not read; the rule is not one of the
	// nftables backend's then.
	unknown int
	udata   []byte
	// err says why the expressions could not be read.
	err error
}

// nftRules lists every rule of the family in one dump, their expressions parsed.
func nftRules(f Family) ([]nftRuleMsg, error) {
	var rules []nftRuleMsg
	err := nftDump(f, unix.NFT_MSG_GETRULE, func() { rules = nil }, func(attrs nftAttrs) {
		attrs = slices.Clone(attrs) // the rule keeps its user data and expressions
		r := nftRuleMsg{table: cString(attrs.get(unix.NFTA_RULE_TABLE)), chain: cString(attrs.get(unix.NFTA_RULE_CHAIN)), udata: attrs.get(unix.NFTA_RULE_USERDATA)}
		if h := attrs.get(unix.NFTA_RULE_HANDLE); len(h) == 8 {
			r.handle = binary.BigEndian.Uint64(h)
		}
		r.exprs, r.unknown, r.err = parseExprs(nftProto(f), attrs.get(unix.NFTA_RULE_EXPRESSIONS))
		rules = append(rules, r)
	})
	return rules, err
}

// parseExprs reads a rule's list of expressions (NFTA_RULE_EXPRESSIONS) with google/nftables'
// expression types, counting those of kinds it has none for. It reads byteorder expressions too,
// which google/nftables v0.3.0 cannot read back (its rule reader leaves them out). A malformed list is an error: the library's
// readers, made for the kernel's answers, may panic on one.
func parseExprs(family byte, b []byte) (out []expr.Any, unknown int, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, unknown, err = nil, 0, fmt.Errorf("a malformed expression: %v", r)
		}
	}()
	elems, err := nl.ParseRouteAttr(b)
	if err != nil {
		return nil, 0, fmt.Errorf("a malformed expression list: %w", err)
	}
	for _, el := range elems {
		if el.Attr.Type&nl.NLA_TYPE_MASK != unix.NFTA_LIST_ELEM {
			return nil, 0, fmt.Errorf("attribute %d in an expression list", el.Attr.Type)
		}
		attrs, err := nl.ParseRouteAttr(el.Value)
		if err != nil {
			return nil, 0, fmt.Errorf("a malformed expression: %w", err)
		}
		var name string
		var data []byte
		for _, a := range attrs {
			switch a.Attr.Type & nl.NLA_TYPE_MASK {
			case unix.NFTA_EXPR_NAME:
				name = cString(a.Value)
			case unix.NFTA_EXPR_DATA:
				data = a.Value
			}
		}
		if name == "byteorder" {
			b, err := parseByteorder(data)
			if err != nil {
				return nil, 0, err
			}
			out = append(out, b)
			continue
		}
		e := newExpr(name)
		if e == nil {
			unknown++
			continue
		}
		if err := expr.Unmarshal(family, data, e); err != nil {
			return nil, 0, fmt.Errorf("expression %s: %w", name, err)
		}
		// A verdict is an immediate into the verdict register.
		if imm, ok := e.(*expr.Immediate); ok && imm.Register == unix.NFT_REG_VERDICT && len(imm.Data) == 0 {
			e = &expr.Verdict{}
			if err := expr.Unmarshal(family, data, e); err != nil {
				return nil, 0, fmt.Errorf("expression %s: %w", name, err)
			}
		}
		out = append(out, e)
	}
	return out, unknown, nil
}

// newExpr is an expression of a kind the nftables backend writes, or that tells rules of ours in
// iptables-nft's tables (match, for iptables' comments); nil for others.
func newExpr(name string) expr.Any {
	switch name {
	case "meta":
		return &expr.Meta{}
	case "cmp":
		return &expr.Cmp{}
	case "payload":
		return &expr.Payload{}
	case "bitwise":
		return &expr.Bitwise{}
	case "lookup":
		return &expr.Lookup{}
	case "immediate":
		return &expr.Immediate{}
	case "ct":
		return &expr.Ct{}
	case "limit":
		return &expr.Limit{}
	case "log":
		return &expr.Log{}
	case "redir":
		return &expr.Redir{}
	case "nat":
		return &expr.NAT{}
	case "match":
		return &expr.Match{}
	}
	return nil
}

// parseByteorder reads a byteorder expression's attributes, each a big-endian 32-bit number.
func parseByteorder(data []byte) (*expr.Byteorder, error) {
	attrs, err := nl.ParseRouteAttr(data)
	if err != nil {
		return nil, fmt.Errorf("a malformed byteorder expression: %w", err)
	}
	b := &expr.Byteorder{}
	for _, a := range attrs {
		if len(a.Value) != 4 {
			return nil, fmt.Errorf("a byteorder attribute of %d bytes", len(a.Value))
		}
		v := binary.BigEndian.Uint32(a.Value)
		switch a.Attr.Type & nl.NLA_TYPE_MASK {
		case unix.NFTA_BYTEORDER_SREG:
			b.SourceRegister = v
		case unix.NFTA_BYTEORDER_DREG:
			b.DestRegister = v
		case unix.NFTA_BYTEORDER_OP:
			b.Op = expr.ByteorderOp(v)
		case unix.NFTA_BYTEORDER_LEN:
			b.Len = v
		case unix.NFTA_BYTEORDER_SIZE:
			b.Size = v
		}
	}
	return b, nil
}

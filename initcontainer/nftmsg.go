package initcontainer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// nftBatch spells an nf_tables transaction straight into the bytes send writes. Built through
// google/nftables' Conn, with a dialer capturing its messages, the same batch took 11.6% of a whole
// kuma-init run in a profile of 150 installs (of which the expressions' own marshaling,
// expr.Marshal, 2.4%) and a quarter of what an install allocated: the library's generic attribute
// marshaling, its flush machinery, a slice per attribute. Expressions are still the library's
// types, spelled by its expr.Marshal, and every message is the one the library spelled, byte for
// byte (TestNFTBatchSpelledAsByTheLibrary).
type nftBatch struct {
	b []byte
	// types holds each message's type, by its sequence number less one: for errors.
	types []uint16
	// msg is where the latest message begins.
	msg   int
	setID uint32
	err   error
}

// newNFTBatch begins a batch. Its messages are numbered from 1 and only the last asks for an
// acknowledgement (see finish): the kernel answers every message it refuses anyway. The buffers
// are sized for the default rules with DNS redirected, both families: 68 messages, 16 KB.
func newNFTBatch() *nftBatch {
	b := &nftBatch{b: make([]byte, 0, 16<<10), types: make([]uint16, 0, 80)}
	b.begin(unix.NFNL_MSG_BATCH_BEGIN, 0, unix.NFPROTO_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	return b
}

// begin starts a message: its header, its length filled in by the next begin or finish, and
// nfgenmsg. resID is the subsystem for the batch's own messages, else 0.
func (b *nftBatch) begin(typ uint16, flags uint16, family byte, resID uint16) {
	b.endMessage()
	b.msg = len(b.b)
	b.types = append(b.types, typ)
	b.b = binary.NativeEndian.AppendUint32(b.b, 0)
	b.b = binary.NativeEndian.AppendUint16(b.b, typ)
	b.b = binary.NativeEndian.AppendUint16(b.b, unix.NLM_F_REQUEST|flags)
	b.b = binary.NativeEndian.AppendUint32(b.b, uint32(len(b.types)))
	b.b = binary.NativeEndian.AppendUint32(b.b, 0) // PID: the kernel's to fill in
	b.b = append(b.b, family, unix.NFNETLINK_V0)
	b.b = binary.BigEndian.AppendUint16(b.b, resID)
}

// endMessage writes the latest message's length; attributes keep it 4-byte aligned.
func (b *nftBatch) endMessage() {
	if len(b.types) > 0 {
		binary.NativeEndian.PutUint32(b.b[b.msg:], uint32(len(b.b)-b.msg))
	}
}

// nft begins an nf_tables message of the family.
func (b *nftBatch) nft(msgType int, flags uint16, family byte) {
	b.begin(uint16(unix.NFNL_SUBSYS_NFTABLES<<8|msgType), flags, family, 0)
}

// attr appends an attribute, zero padded to 4 bytes.
func (b *nftBatch) attr(typ uint16, data ...byte) {
	at := b.nest(typ)
	b.b = append(b.b, data...)
	b.endNest(at)
}

func (b *nftBatch) attrString(typ uint16, s string) {
	at := b.nest(typ)
	b.b = append(append(b.b, s...), 0)
	b.endNest(at)
}

// attrU32 appends a big-endian (network order) 32-bit attribute.
func (b *nftBatch) attrU32(typ uint16, v uint32) {
	at := b.nest(typ)
	b.b = binary.BigEndian.AppendUint32(b.b, v)
	b.endNest(at)
}

func (b *nftBatch) attrU64(typ uint16, v uint64) {
	at := b.nest(typ)
	b.b = binary.BigEndian.AppendUint64(b.b, v)
	b.endNest(at)
}

// nest starts an attribute whose value is what is appended until endNest(at).
func (b *nftBatch) nest(typ uint16) (at int) {
	at = len(b.b)
	b.b = binary.NativeEndian.AppendUint16(b.b, 0)
	b.b = binary.NativeEndian.AppendUint16(b.b, typ)
	return at
}

func (b *nftBatch) endNest(at int) {
	n := len(b.b) - at
	if n > 0xffff && b.err == nil {
		b.err = fmt.Errorf("an attribute of %d bytes, more than netlink's 65535", n)
	}
	binary.NativeEndian.PutUint16(b.b[at:], uint16(n))
	for len(b.b)%4 != 0 {
		b.b = append(b.b, 0)
	}
}

// addTable adds a table, as `nft add table` does: no error when it exists.
func (b *nftBatch) addTable(family byte, name string) {
	b.nft(unix.NFT_MSG_NEWTABLE, unix.NLM_F_CREATE, family)
	b.attrString(unix.NFTA_TABLE_NAME, name)
	b.attrU32(unix.NFTA_TABLE_FLAGS, 0)
}

func (b *nftBatch) delTable(family byte, name string) {
	b.nft(unix.NFT_MSG_DELTABLE, 0, family)
	b.attrString(unix.NFTA_TABLE_NAME, name)
	b.attrU32(unix.NFTA_TABLE_FLAGS, 0)
}

// addChain adds a chain; a base chain (c.base()) with its hook, priority and type, its policy
// left to the kernel's default, accept.
func (b *nftBatch) addChain(family byte, table string, c NFTChain) {
	b.nft(unix.NFT_MSG_NEWCHAIN, unix.NLM_F_CREATE, family)
	b.attrString(unix.NFTA_CHAIN_TABLE, table)
	b.attrString(unix.NFTA_CHAIN_NAME, c.Name)
	if !c.base() {
		return
	}
	hook := uint32(unix.NF_INET_PRE_ROUTING)
	if c.Hook == "output" {
		hook = unix.NF_INET_LOCAL_OUT
	}
	at := b.nest(unix.NLA_F_NESTED | unix.NFTA_CHAIN_HOOK)
	b.attrU32(unix.NFTA_HOOK_HOOKNUM, hook)
	b.attrU32(unix.NFTA_HOOK_PRIORITY, uint32(c.Priority))
	b.endNest(at)
	b.attrString(unix.NFTA_CHAIN_TYPE, c.Type)
}

func (b *nftBatch) delChain(family byte, table, chain string) {
	b.nft(unix.NFT_MSG_DELCHAIN, 0, family)
	b.attrString(unix.NFTA_CHAIN_TABLE, table)
	b.attrString(unix.NFTA_CHAIN_NAME, chain)
}

// addPortSet adds an anonymous constant interval set of ports and its elements, as nft makes one
// for `th dport { ... }`, and returns the name and the transaction's ID the rule looking it up
// names it by. The kernel names it on creation, from the pattern.
func (b *nftBatch) addPortSet(family byte, table string, elements nftPortSet) (name string, id uint32, err error) {
	b.setID++
	name, id = "__set%d", b.setID
	b.nft(unix.NFT_MSG_NEWSET, unix.NLM_F_CREATE, family)
	b.attrString(unix.NFTA_SET_TABLE, table)
	b.attrString(unix.NFTA_SET_NAME, name)
	b.attrU32(unix.NFTA_SET_FLAGS, unix.NFT_SET_ANONYMOUS|unix.NFT_SET_CONSTANT|unix.NFT_SET_INTERVAL)
	b.attrU32(unix.NFTA_SET_KEY_TYPE, 13) // nft's inet_service
	b.attrU32(unix.NFTA_SET_KEY_LEN, 2)
	b.attrU32(unix.NFTA_SET_ID, id)
	at := b.nest(unix.NLA_F_NESTED | unix.NFTA_SET_DESC)
	b.attrU32(unix.NFTA_SET_DESC_SIZE, uint32(len(elements)))
	b.endNest(at)
	// The key's byte order, big endian, kept by nft for listing the set.
	b.attr(unix.NFTA_SET_USERDATA, userdata.AppendUint32(nil, userdata.NFTNL_UDATA_SET_KEYBYTEORDER, 2)...)
	if len(elements) == 0 {
		return name, id, b.err
	}
	b.nft(unix.NFT_MSG_NEWSETELEM, unix.NLM_F_CREATE, family)
	b.attrString(unix.NFTA_SET_ELEM_LIST_SET, name)
	b.attrU32(unix.NFTA_SET_ELEM_LIST_SET_ID, id)
	b.attrString(unix.NFTA_SET_ELEM_LIST_TABLE, table)
	list := b.nest(unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_LIST_ELEMENTS)
	for i, e := range elements { // a port and whether it ends an interval: all portSet makes
		elem := b.nest(unix.NLA_F_NESTED | uint16(i+1))
		if e.IntervalEnd {
			// Marked nested as google/nftables marks it (nft does not); the kernel accepts both.
			b.attrU32(unix.NLA_F_NESTED|unix.NFTA_SET_ELEM_FLAGS, unix.NFT_SET_ELEM_INTERVAL_END)
		}
		key := b.nest(unix.NLA_F_NESTED | unix.NFTA_SET_ELEM_KEY)
		b.attr(unix.NFTA_DATA_VALUE, e.Key...)
		b.endNest(key)
		b.endNest(elem)
	}
	b.endNest(list)
	return name, id, b.err
}

// addRule appends a rule to the chain, with its comment as nft keeps it when udata is not nil.
func (b *nftBatch) addRule(family byte, table, chain string, exprs []expr.Any, udata []byte) error {
	b.nft(unix.NFT_MSG_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_APPEND, family)
	b.attrString(unix.NFTA_RULE_TABLE, table)
	b.attrString(unix.NFTA_RULE_CHAIN, chain)
	list := b.nest(unix.NLA_F_NESTED | unix.NFTA_RULE_EXPRESSIONS)
	for _, e := range exprs {
		data, err := expr.Marshal(family, e)
		if err != nil {
			return err
		}
		b.attr(unix.NLA_F_NESTED|unix.NFTA_LIST_ELEM, data...)
	}
	b.endNest(list)
	if udata != nil {
		b.attr(unix.NFTA_RULE_USERDATA, udata...)
	}
	return nil
}

func (b *nftBatch) delRule(family byte, table, chain string, handle uint64) {
	b.nft(unix.NFT_MSG_DELRULE, 0, family)
	b.attrString(unix.NFTA_RULE_TABLE, table)
	b.attrString(unix.NFTA_RULE_CHAIN, chain)
	b.attrU64(unix.NFTA_RULE_HANDLE, handle)
}

// finish ends the batch: the last message asks for the acknowledgement, and the batch's end
// message follows it. It returns the batch's bytes.
func (b *nftBatch) finish() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	flags := binary.NativeEndian.Uint16(b.b[b.msg+6:])
	binary.NativeEndian.PutUint16(b.b[b.msg+6:], flags|unix.NLM_F_ACK)
	b.begin(unix.NFNL_MSG_BATCH_END, 0, unix.NFPROTO_UNSPEC, unix.NFNL_SUBSYS_NFTABLES)
	b.endMessage()
	return b.b, nil
}

// nftBatchError is a message of the batch that the kernel refused.
type nftBatchError struct {
	op    string
	errno syscall.Errno
}

func (e *nftBatchError) Error() string { return e.op + ": " + e.errno.Error() }
func (e *nftBatchError) Unwrap() error { return e.errno }

// send finishes the batch and sends it in one write on a netlink socket of the calling thread's
// network namespace, then waits for the kernel's verdict on it: nil when it was committed, else
// every message it refused.
func (b *nftBatch) send() error {
	if len(b.types) < 2 {
		return nil // begin alone, end to come
	}
	batch, err := b.finish()
	if err != nil {
		return err
	}
	first, last := uint32(1), uint32(len(b.types))
	fd, err := nftSocket()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, batch, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("nftables: sending the transaction: %w", err)
	}
	var errs []error
	err = netlinkAcks(fd, func(seq uint32, errno syscall.Errno) bool {
		if errno != 0 {
			op := "the transaction"
			if seq >= first && seq <= last {
				op = nftOp(b.types[seq-1])
			}
			errs = append(errs, &nftBatchError{op: op, errno: errno})
		}
		// The last message's answer comes after every other's; an answer to the begin message
		// is about the whole batch, refused before any message was read.
		return seq == last-1 || seq == first
	})
	if err != nil {
		return err
	}
	return errors.Join(errs...)
}

// nftOp names a message of the batch for errors.
func nftOp(t uint16) string {
	switch t & 0xff {
	case unix.NFT_MSG_NEWTABLE:
		return "adding a table"
	case unix.NFT_MSG_DELTABLE:
		return "deleting a table"
	case unix.NFT_MSG_NEWCHAIN:
		return "adding a chain"
	case unix.NFT_MSG_DELCHAIN:
		return "deleting a chain"
	case unix.NFT_MSG_NEWRULE:
		return "adding a rule"
	case unix.NFT_MSG_DELRULE:
		return "deleting a rule"
	case unix.NFT_MSG_NEWSET:
		return "adding a set"
	case unix.NFT_MSG_NEWSETELEM:
		return "adding a set's elements"
	}
	return "the transaction"
}

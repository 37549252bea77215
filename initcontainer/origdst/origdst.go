// Package origdst reads where a redirected connection was headed: what the sidecar, the
// capture validation and the traffic tests all need to know.
package origdst

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Of returns the destination an accepted connection had before REDIRECT, from
// SO_ORIGINAL_DST (IPv4) or IP6T_SO_ORIGINAL_DST (IPv6, the same option number on SOL_IPV6), as
// the sidecar reads it. The kernel answers ENOENT when conntrack has no entry, which means no
// NAT: then, as when it returns the local address itself, the original destination is local.
func Of(c *net.TCPConn) (netip.AddrPort, error) {
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	local = netip.AddrPortFrom(local.Addr().Unmap(), local.Port())
	raw, err := c.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var orig netip.AddrPort
	var serr error
	if err := raw.Control(func(fd uintptr) { orig, serr = soOriginalDst(int(fd), local.Addr().Is4()) }); err != nil {
		return netip.AddrPort{}, err
	}
	if errors.Is(serr, unix.ENOENT) {
		return local, nil
	}
	return orig, serr
}

func soOriginalDst(fd int, ipv4 bool) (netip.AddrPort, error) {
	level, family := unix.SOL_IPV6, unix.AF_INET6
	if ipv4 {
		level, family = unix.SOL_IP, unix.AF_INET
	}
	// Room for a sockaddr_in6, the larger answer; both put the port, big-endian, at offset 2.
	var sa [unix.SizeofSockaddrInet6]byte
	size := uint32(len(sa))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), unix.SO_ORIGINAL_DST,
		uintptr(unsafe.Pointer(&sa[0])), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return netip.AddrPort{}, fmt.Errorf("getsockopt SO_ORIGINAL_DST: %w", errno)
	}
	if got := binary.NativeEndian.Uint16(sa[:2]); got != uint16(family) {
		return netip.AddrPort{}, fmt.Errorf("getsockopt SO_ORIGINAL_DST: address family %d, want %d", got, family)
	}
	port := binary.BigEndian.Uint16(sa[2:4])
	if ipv4 {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(sa[4:8])), port), nil
	}
	return netip.AddrPortFrom(netip.AddrFrom16([16]byte(sa[8:24])), port), nil
}

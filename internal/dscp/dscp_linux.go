//go:build linux

package dscp

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"
)

// setTOS sets the IPv4 TOS byte of socket fd and, on an IPv6 socket, its IPv6
// traffic class: a dual-stack socket sends to IPv4-mapped addresses as IPv4,
// with the IP_TOS value.
func setTOS(fd, tos int) error {
	family, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("dscp: socket family: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IP, syscall.IP_TOS, tos); err != nil {
		return fmt.Errorf("dscp: IP_TOS: %w", err)
	}
	if family == syscall.AF_INET6 {
		if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS, tos); err != nil {
			return fmt.Errorf("dscp: IPV6_TCLASS: %w", err)
		}
	}
	return nil
}

// controlMessages returns an IP_TOS and an IPV6_TCLASS control message, each
// holding tos as an int, for sendmsg(2).
func controlMessages(tos int) []byte {
	space := syscall.CmsgSpace(4)
	b := make([]byte, 2*space)
	for i, kind := range [2][2]int32{{syscall.IPPROTO_IP, syscall.IP_TOS}, {syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS}} {
		msg := b[i*space : (i+1)*space]
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&msg[0]))
		h.Level, h.Type = kind[0], kind[1]
		h.SetLen(syscall.CmsgLen(4))
		binary.NativeEndian.PutUint32(msg[syscall.CmsgLen(0):], uint32(tos))
	}
	return b
}

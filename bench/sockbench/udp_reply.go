package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Errors of parseUDPReply; values, so that a bad reply costs no allocation.
var (
	errReplyShort    = errors.New("udp reply header truncated")
	errReplyFragment = errors.New("udp reply is a fragment")
)

// udpReply is a datagram the relay sent back: the source it names (an address,
// or a name for ATYP DOMAINNAME) and the payload. host and payload alias the
// parsed buffer.
type udpReply struct {
	from    netip.AddrPort // zero for a name
	host    []byte         // the name of ATYP DOMAINNAME; nil otherwise
	port    uint16
	payload []byte
}

// parseUDPReply parses the SOCKS5 UDP header (RFC 1928 section 7) in front of a
// datagram from the relay. It takes any address type: a relay may name the
// source by IPv4, IPv6 or name, and the name is not checked, only skipped. A
// fragment (FRAG not 0) is refused, since sockbench never sends one.
func parseUDPReply(b []byte) (udpReply, error) {
	var r udpReply
	if len(b) < 4 {
		return r, errReplyShort
	}
	if b[2] != 0 {
		return r, errReplyFragment
	}
	rest := b[4:]
	var n int
	switch b[3] {
	case atypIPv4:
		n = 4
	case atypIPv6:
		n = 16
	case atypDomain:
		if len(rest) == 0 {
			return r, errReplyShort
		}
		n = 1 + int(rest[0])
	default:
		return r, fmt.Errorf("udp reply address type %#02x", b[3])
	}
	if len(rest) < n+2 {
		return r, errReplyShort
	}
	r.port = binary.BigEndian.Uint16(rest[n:])
	switch b[3] {
	case atypIPv4:
		r.from = netip.AddrPortFrom(netip.AddrFrom4([4]byte(rest[:4])), r.port)
	case atypIPv6:
		r.from = netip.AddrPortFrom(netip.AddrFrom16([16]byte(rest[:16])).Unmap(), r.port)
	default:
		r.host = rest[1:n]
	}
	r.payload = rest[n+2:]
	return r, nil
}

// appendUDPHeader appends the SOCKS5 UDP request header for a datagram to dst.
func appendUDPHeader(b []byte, dst netip.AddrPort) []byte {
	addr := dst.Addr().Unmap()
	atyp := byte(atypIPv4)
	if addr.Is6() {
		atyp = atypIPv6
	}
	b = append(b, 0, 0, 0, atyp)
	b = append(b, addr.AsSlice()...)
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

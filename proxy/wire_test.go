package proxy

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"
)

// The SOCKS5 numbers of RFC 1928 that the tests write and expect, spelled out
// here rather than taken from the front, so that the tests check the front
// against the RFC and not against itself.
const (
	socksVersion = 5

	replySucceeded           = 0x00
	replyGeneralFailure      = 0x01
	replyNotAllowed          = 0x02
	replyNetworkUnreachable  = 0x03
	replyHostUnreachable     = 0x04
	replyConnectionRefused   = 0x05
	replyCommandNotSupported = 0x07
	replyAddrTypeUnsupported = 0x08

	atypIPv4   = 0x01
	atypDomain = 0x03
	atypIPv6   = 0x04
)

// datagram is a UDP request or reply of RFC 1928 section 7, as the tests build
// and read them.
type datagram struct {
	frag    byte
	addr    netip.Addr
	host    []byte
	port    uint16
	payload []byte
}

// appendDatagram appends d with RSV zero: a name when host is set, else an IPv4
// or IPv6 address.
func appendDatagram(b []byte, d datagram) []byte {
	b = append(b, 0, 0, d.frag)
	switch {
	case d.host != nil:
		b = append(append(b, atypDomain, byte(len(d.host))), d.host...)
	case d.addr.Is4():
		a := d.addr.As4()
		b = append(append(b, atypIPv4), a[:]...)
	default:
		a := d.addr.As16()
		b = append(append(b, atypIPv6), a[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, d.port)
	return append(b, d.payload...)
}

// parseDatagram reads a datagram the relay sent: an IPv4 or IPv6 source.
func parseDatagram(b []byte) (datagram, error) {
	if len(b) < 4 {
		return datagram{}, errors.New("short header")
	}
	d := datagram{frag: b[2]}
	rest := b[4:]
	var n int
	switch b[3] {
	case atypIPv4:
		n = 4
	case atypIPv6:
		n = 16
	default:
		return datagram{}, errors.New("address type of a reply must be IPv4 or IPv6")
	}
	if len(rest) < n+2 {
		return datagram{}, errors.New("short address")
	}
	d.addr, _ = netip.AddrFromSlice(rest[:n])
	d.port = binary.BigEndian.Uint16(rest[n:])
	d.payload = rest[n+2:]
	return d, nil
}

// interfaceAddrs returns the host's addresses that are neither loopback nor
// link-local, which only a wildcard listener's check can find.
func interfaceAddrs(t *testing.T) []netip.Addr {
	t.Helper()
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, ia := range ifAddrs {
		if p, ok := ia.(*net.IPNet); ok {
			a, _ := netip.AddrFromSlice(p.IP)
			if a = a.Unmap(); !a.IsLoopback() && !a.IsLinkLocalUnicast() {
				out = append(out, a)
			}
		}
	}
	return out
}

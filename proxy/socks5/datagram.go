package socks5

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// UDP request header of RFC 1928 section 7, in front of every datagram between a
// client and the relay:
//
//	+----+------+------+----------+----------+----------+
//	|RSV | FRAG | ATYP | DST.ADDR | DST.PORT |   DATA   |
//	+----+------+------+----------+----------+----------+
//	| 2  |  1   |  1   | Variable |    2     | Variable |
//	+----+------+------+----------+----------+----------+
const (
	// datagramFixed is RSV, FRAG and ATYP.
	datagramFixed = 4
	// maxReplyHeader is the longest header the relay writes in front of a reply,
	// the IPv6 form: 4 + 16 + 2. The relay reads replies this far into its buffer
	// so that the header can be put in front without moving the payload.
	maxReplyHeader = datagramFixed + 16 + 2
)

// Errors of parseDatagram. They are values so that dropping a bad datagram
// allocates nothing.
var (
	errDatagramShort    = errors.New("udp header truncated")
	errDatagramAddrType = errors.New("udp header has an unknown address type")
	errDatagramNoName   = errors.New("udp header has an empty name")
)

// datagram is one parsed UDP request. host and payload alias the parsed buffer,
// so a datagram is valid only until that buffer is reused.
type datagram struct {
	frag    byte
	addr    netip.Addr // ATYP IPv4 or IPv6; the zero Addr for a name
	host    []byte     // ATYP DOMAINNAME; nil for an address
	port    uint16
	payload []byte
}

// parseDatagram parses a UDP request header and returns it with the payload. It
// does not allocate. RSV is ignored, as most relays do: it carries nothing, and
// being strict about it would only drop traffic of sloppy clients. An IPv6 address
// is kept as sent, IPv4-mapped or not, so that a parse and a build give back the
// same bytes.
func parseDatagram(b []byte) (datagram, error) {
	var d datagram
	if len(b) < datagramFixed {
		return d, errDatagramShort
	}
	d.frag = b[2]
	rest := b[datagramFixed:]
	var n int
	switch b[3] {
	case atypIPv4:
		n = 4
		if len(rest) >= n {
			d.addr = netip.AddrFrom4([4]byte(rest[:4]))
		}
	case atypIPv6:
		n = 16
		if len(rest) >= n {
			d.addr = netip.AddrFrom16([16]byte(rest[:16]))
		}
	case atypDomain:
		if len(rest) == 0 {
			return d, errDatagramShort
		}
		n = 1 + int(rest[0])
		if n == 1 {
			return d, errDatagramNoName
		}
		if len(rest) >= n {
			d.host = rest[1:n]
		}
	default:
		return d, errDatagramAddrType
	}
	if len(rest) < n+2 {
		return datagram{}, errDatagramShort
	}
	d.port = binary.BigEndian.Uint16(rest[n:])
	d.payload = rest[n+2:]
	return d, nil
}

// appendDatagram appends d in wire form, header and payload, with RSV zero. A
// datagram with a host is written as a name (the caller keeps it within 255
// bytes); otherwise an IPv4 address (mapped or not) is written as IPv4 only when
// it is a plain IPv4 Addr, so that parseDatagram's output round-trips exactly.
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

// replyHeaderLen returns the length of the header the relay writes in front of a
// datagram from peer.
func replyHeaderLen(peer netip.AddrPort) int {
	if peer.Addr().Unmap().Is4() {
		return datagramFixed + 4 + 2
	}
	return maxReplyHeader
}

// appendReplyHeader appends the header of a datagram relayed to the client from
// peer: RSV, FRAG zero, and the peer's address in the form appendAddrPort writes
// (IPv4-mapped addresses as IPv4, which is what the client sent to).
func appendReplyHeader(b []byte, peer netip.AddrPort) []byte {
	return appendAddrPort(append(b, 0, 0, 0), peer)
}

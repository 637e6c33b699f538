package socks5

import (
	"io"
	"net/netip"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// Reply codes of RFC 1928 section 6. armon/go-socks5 keeps its own unexported.
const (
	replySucceeded           byte = 0x00
	replyGeneralFailure      byte = 0x01
	replyNotAllowed          byte = 0x02
	replyNetworkUnreachable  byte = 0x03
	replyHostUnreachable     byte = 0x04
	replyConnectionRefused   byte = 0x05
	replyCommandNotSupported byte = 0x07
	replyAddrTypeUnsupported byte = 0x08
)

// Address types of RFC 1928 section 5.
const (
	atypIPv4   byte = 0x01
	atypDomain byte = 0x03
	atypIPv6   byte = 0x04
)

const socksVersion = 0x05

// writeReply sends a reply carrying bound as BND.ADDR/BND.PORT; an invalid bound
// sends 0.0.0.0:0, as failure replies do.
func writeReply(w io.Writer, code byte, bound netip.AddrPort) error {
	var b [22]byte
	msg := appendAddrPort(append(b[:0], socksVersion, code, 0), bound)
	_, err := w.Write(msg)
	return err
}

// appendAddrPort appends ATYP, address and port in SOCKS5 form.
func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	addr := ap.Addr().Unmap()
	switch {
	case addr.Is4():
		a := addr.As4()
		b = append(append(b, atypIPv4), a[:]...)
	case addr.Is6():
		a := addr.As16()
		b = append(append(b, atypIPv6), a[:]...)
	default:
		b = append(b, atypIPv4, 0, 0, 0, 0)
	}
	return append(b, byte(ap.Port()>>8), byte(ap.Port()))
}

// reply sends a failure reply with code, the front's own refusal of the
// request, recorded with result.
func reply(s *tunnel.Session, code byte, result string) {
	writeReply(s.Conn().Net(), code, netip.AddrPort{})
	s.Refuse(result, "")
}

// refuse answers a refusal of the core, which recorded it, with its reply code;
// a connection that is gone gets none.
func refuse(s *tunnel.Session, o tunnel.Outcome) {
	if o.Refusal != tunnel.Gone {
		writeReply(s.Conn().Net(), replyCode(o.Refusal), netip.AddrPort{})
	}
}

// replyCode maps a refusal to the reply a client can act on.
func replyCode(r tunnel.Refusal) byte {
	switch r {
	case tunnel.Allowed:
		return replySucceeded
	case tunnel.Denied, tunnel.LimitReached:
		return replyNotAllowed
	case tunnel.Unresolvable, tunnel.HostUnreachable:
		return replyHostUnreachable
	case tunnel.NetUnreachable:
		return replyNetworkUnreachable
	case tunnel.ConnRefused:
		return replyConnectionRefused
	}
	return replyGeneralFailure
}

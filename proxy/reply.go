package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
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

// addrPortOf converts a net.Addr of a TCP or UDP socket, with an IPv4-mapped
// IPv6 address (a dual-stack socket's IPv4 peer) in its IPv4 form, so that an
// IPv4 client is logged and matched as the IPv4 address it is.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// dialReplyCode maps a dial error to the reply a client can act on.
func dialReplyCode(err error) byte {
	var errno syscall.Errno
	switch {
	case errors.As(err, &errno) && errno == syscall.ECONNREFUSED:
		return replyConnectionRefused
	case errors.As(err, &errno) && errno == syscall.ENETUNREACH:
		return replyNetworkUnreachable
	case errors.As(err, &errno) && errno == syscall.EHOSTUNREACH,
		errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return replyHostUnreachable
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return replyHostUnreachable
	}
	return replyGeneralFailure
}

// isTimeout reports whether err is a network timeout, such as a passed deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

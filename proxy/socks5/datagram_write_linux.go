//go:build linux

package socks5

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"github.com/sockshaper/sockshaper/internal/dscp"
)

// errFamily is a destination the relay socket's address family cannot reach.
var errFamily = errors.New("destination of the other address family")

// udpWriter sends an association's datagrams. An unmarked datagram goes out with
// a raw, non-blocking sendto: on loopback and fast links the relay is bound by
// system calls, and net.UDPConn's send enters the scheduler's syscall state,
// waking the runtime's monitor thread for each datagram. A full send buffer
// still waits in the poller. A marked datagram needs its control message and
// goes through [dscp.Mark.WriteTo]. Sending allocates nothing.
type udpWriter struct {
	c      *net.UDPConn
	rc     syscall.RawConn
	send   func(fd uintptr) bool // made once, so that sending allocates nothing
	inet6  bool                  // the socket is AF_INET6 (IPv4 goes as mapped)
	b      []byte
	sa4    syscall.RawSockaddrInet4
	sa6    syscall.RawSockaddrInet6
	n      int
	err    error
	useSA6 bool
}

// newUDPWriter returns a writer of c, or an error when c has no descriptor.
func newUDPWriter(c *net.UDPConn) (*udpWriter, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &udpWriter{c: c, rc: rc}
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) { domain, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_DOMAIN) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	w.inet6 = domain == syscall.AF_INET6
	w.send = w.trySend
	return w, nil
}

// write sends b to dst, marked with m.
func (w *udpWriter) write(m dscp.Mark, b []byte, dst netip.AddrPort) (int, error) {
	if !m.IsZero() {
		return m.WriteTo(w.c, b, dst)
	}
	if err := w.setDestination(dst); err != nil {
		return 0, err
	}
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.send)
	w.b = nil
	if err != nil {
		return 0, err
	}
	return w.n, w.err
}

func (w *udpWriter) setDestination(dst netip.AddrPort) error {
	addr := dst.Addr().Unmap()
	port := (*[2]byte)(unsafe.Pointer(&w.sa4.Port))
	if w.inet6 {
		port = (*[2]byte)(unsafe.Pointer(&w.sa6.Port))
		w.sa6.Family, w.sa6.Addr, w.useSA6 = syscall.AF_INET6, addr.As16(), true
	} else {
		if !addr.Is4() {
			return errFamily
		}
		w.sa4.Family, w.sa4.Addr, w.useSA6 = syscall.AF_INET, addr.As4(), false
	}
	port[0], port[1] = byte(dst.Port()>>8), byte(dst.Port())
	return nil
}

// trySend sends w.b without blocking; when the send buffer is full it returns
// false, and the poller waits until the socket is writable.
func (w *udpWriter) trySend(fd uintptr) bool {
	sa, salen := unsafe.Pointer(&w.sa4), uintptr(syscall.SizeofSockaddrInet4)
	if w.useSA6 {
		sa, salen = unsafe.Pointer(&w.sa6), uintptr(syscall.SizeofSockaddrInet6)
	}
	var p unsafe.Pointer
	if len(w.b) > 0 {
		p = unsafe.Pointer(&w.b[0])
	}
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(p), uintptr(len(w.b)),
			syscall.MSG_DONTWAIT, uintptr(sa), salen)
		switch errno {
		case 0:
			w.n = int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			w.err = errno
			return true
		}
	}
}

//go:build linux

package socks5

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"
)

// udpReader reads an association's relay socket one datagram at a time. It waits
// for a datagram without a buffer (the poller's readiness, through RawConn.Read)
// and takes a pooled buffer only when one is queued, so that an association
// waiting for its next datagram holds no buffer: the pool holds one per datagram
// in flight, not one per association. Reading allocates nothing.
type udpReader struct {
	rc   syscall.RawConn
	recv func(fd uintptr) bool // made once, so that reading allocates nothing
	buf  *[udpBufSize]byte
	n    int
	err  error
	rsa  syscall.RawSockaddrAny
	alen uint32
}

// newUDPReader returns a reader of c, or an error when c has no descriptor.
func newUDPReader(c *net.UDPConn) (*udpReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &udpReader{rc: rc}
	r.recv = r.tryRecv
	return r, nil
}

// read blocks until a datagram arrives and returns it: a pooled buffer holding
// the payload at [maxReplyHeader:maxReplyHeader+n], so that a reply header fits
// in front, and its source with IPv4-mapped addresses unmapped. The caller gives
// the buffer back with release before the next read. A closed socket ends the
// wait with an error.
func (r *udpReader) read() (*[udpBufSize]byte, int, netip.AddrPort, error) {
	r.err = nil
	if err := r.rc.Read(r.recv); err != nil {
		return nil, 0, netip.AddrPort{}, err
	}
	if r.err != nil {
		return nil, 0, netip.AddrPort{}, r.err
	}
	return r.buf, r.n, sockaddrAddrPort(&r.rsa), nil
}

// release gives the buffer of the last read back to the pool.
func (r *udpReader) release() {
	if r.buf != nil {
		udpBufs.Put(r.buf)
		r.buf = nil
	}
}

// tryRecv takes a buffer and receives one datagram without blocking; when none
// is queued it gives the buffer back and returns false, and the poller waits.
func (r *udpReader) tryRecv(fd uintptr) bool {
	b := udpBufs.Get().(*[udpBufSize]byte)
	for {
		r.alen = syscall.SizeofSockaddrAny
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd,
			uintptr(unsafe.Pointer(&b[maxReplyHeader])), udpBufSize-maxReplyHeader, syscall.MSG_DONTWAIT,
			uintptr(unsafe.Pointer(&r.rsa)), uintptr(unsafe.Pointer(&r.alen)))
		switch errno {
		case 0:
			r.buf, r.n = b, int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			udpBufs.Put(b)
			return false
		default:
			udpBufs.Put(b)
			r.err = errno
			return true
		}
	}
}

// sockaddrAddrPort converts a received source address; IPv4-mapped IPv6
// sources (a dual-stack socket) come out as IPv4.
func sockaddrAddrPort(rsa *syscall.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), networkPort(sa.Port))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), networkPort(sa.Port))
	}
	return netip.AddrPort{}
}

// networkPort reads a port the kernel stored in network byte order.
func networkPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

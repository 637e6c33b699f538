//go:build linux

package socks5

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// udpBatchLen is how many datagrams one recvmmsg reads at most. Sixteen takes
// nearly all the gain (16 associations at full rate found 3 to 5 queued per
// wake, one association up to 32) at 1 MiB of address space per batch, most of
// it never touched.
const udpBatchLen = 16

// batchSys holds the headers of recvmmsg and sendmmsg for a batch. The receive
// side's point into the batch itself and are set once; only what the kernel
// writes back is reset before each read.
type batchSys struct {
	rhdrs [udpBatchLen]unix.Mmsghdr
	riovs [udpBatchLen]unix.Iovec
	rsa   [udpBatchLen]unix.RawSockaddrAny
	shdrs [udpBatchLen]unix.Mmsghdr
	siovs [udpBatchLen]unix.Iovec
	ssa   [udpBatchLen]unix.RawSockaddrInet6 // room for either family
	sidx  [udpBatchLen]uint8                 // which send each header is
}

func newUDPBatch() *udpBatch {
	b := new(udpBatch)
	s := &b.sys
	for i := range s.rhdrs {
		s.riovs[i].Base = &b.bufs[i][maxReplyHeader]
		s.riovs[i].SetLen(udpBufSize - maxReplyHeader)
		s.rhdrs[i].Hdr.Iov = &s.riovs[i]
		s.rhdrs[i].Hdr.SetIovlen(1)
		s.rhdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.rsa[i]))
		s.shdrs[i].Hdr.Iov = &s.siovs[i]
		s.shdrs[i].Hdr.SetIovlen(1)
		s.shdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&s.ssa[i]))
	}
	return b
}

// udpReader reads an association's relay socket a batch at a time. It waits for
// a datagram without a batch (the poller's readiness, through RawConn.Read) and
// takes a pooled batch only when the socket is readable; then one recvmmsg,
// which does not wait, takes every datagram queued, up to udpBatchLen. Reading
// allocates nothing.
type udpReader struct {
	rc    syscall.RawConn
	recv  func(fd uintptr) bool // made once, so that reading allocates nothing
	batch *udpBatch
	err   error
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

// read blocks until at least one datagram arrives and returns the batch of
// those queued: datagram i's payload is at bufs[i][maxReplyHeader:][:size[i]],
// so that a reply header fits in front, and its source is from[i], IPv4-mapped
// addresses unmapped. The caller gives the batch back with release before the
// next read. A closed socket ends the wait with an error.
func (r *udpReader) read() (*udpBatch, error) {
	r.err = nil
	if err := r.rc.Read(r.recv); err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.batch, nil
}

// release gives the batch of the last read back to the pool.
func (r *udpReader) release() {
	if r.batch != nil {
		udpBatches.Put(r.batch)
		r.batch = nil
	}
}

// tryRecv takes a batch and receives what is queued without blocking; when
// nothing is, it gives the batch back and returns false, and the poller waits.
func (r *udpReader) tryRecv(fd uintptr) bool {
	b := udpBatches.Get().(*udpBatch)
	s := &b.sys
	for i := range s.rhdrs {
		s.rhdrs[i].Hdr.Namelen = unix.SizeofSockaddrAny
	}
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.rhdrs[0])),
			udpBatchLen, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.n = int(n)
			for i := range b.n {
				b.size[i] = int(s.rhdrs[i].Len)
				b.from[i] = sockaddrAddrPort(&s.rsa[i])
			}
			r.batch = b
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			udpBatches.Put(b)
			return false
		default:
			udpBatches.Put(b)
			r.err = errno
			return true
		}
	}
}

// sockaddrAddrPort converts a received source address; IPv4-mapped IPv6
// sources (a dual-stack socket) come out as IPv4.
func sockaddrAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), networkPort(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), networkPort(sa.Port))
	}
	return netip.AddrPort{}
}

// networkPort reads a port the kernel stored in network byte order.
func networkPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

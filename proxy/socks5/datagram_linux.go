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

// udpReader reads an association's relay socket a batch at a time and hands
// each batch to relay. It waits for a datagram without a batch (the poller's
// readiness, through RawConn.Read) and takes a pooled batch only when the
// socket is readable; then one recvmmsg, which does not wait, takes every
// datagram queued, up to udpBatchLen. Reading allocates nothing.
//
// The whole loop runs inside one RawConn.Read, which returns only when the
// socket fails or is closed: a fresh Read forgets the readiness the poller
// noted since the last wait, so it must begin with a read that may find
// nothing (EAGAIN), one system call for nothing per wake when datagrams come
// one at a time, as a call's do. Inside one Read the poller's note is kept,
// so a short batch, which says the queue was empty when it was read, goes
// straight back to waiting: a datagram that arrived since has been noted and
// ends the wait at once.
type udpReader struct {
	rc      syscall.RawConn
	onReady func(fd uintptr) bool // made once, so that reading allocates nothing
	relay   func(*udpBatch)
	err     error
}

// newUDPReader returns a reader of c that hands each batch to relay, or an
// error when c has no descriptor.
func newUDPReader(c *net.UDPConn, relay func(*udpBatch)) (*udpReader, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	r := &udpReader{rc: rc, relay: relay}
	r.onReady = r.readBatches
	return r, nil
}

// run reads and relays batches until the socket fails or is closed, and
// returns why. Each batch is handed to relay, in arrival order, and goes back
// to the pool when relay returns.
func (r *udpReader) run() error {
	r.err = nil
	if err := r.rc.Read(r.onReady); err != nil {
		return err
	}
	return r.err
}

// readBatches reads and relays batches while the queue fills them, without
// blocking. It returns false to wait for the poller, after a short batch or
// when nothing was queued, and true, ending run, only on an error.
func (r *udpReader) readBatches(fd uintptr) bool {
	for {
		b := udpBatches.Get().(*udpBatch)
		s := &b.sys
		for i := range s.rhdrs {
			s.rhdrs[i].Hdr.Namelen = unix.SizeofSockaddrAny
		}
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&s.rhdrs[0])),
			udpBatchLen, unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			b.n = int(n)
			for i := range b.n {
				b.size[i] = int(s.rhdrs[i].Len)
				b.from[i] = sockaddrAddrPort(&s.rsa[i])
			}
			r.relay(b)
			udpBatches.Put(b) // not to be touched from here on
			if n < udpBatchLen {
				return false
			}
		case unix.EINTR:
			udpBatches.Put(b)
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

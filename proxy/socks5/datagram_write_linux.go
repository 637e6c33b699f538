//go:build linux

package socks5

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Errors of a datagram the writer could not send.
var (
	// errFamily is a destination the relay socket's address family cannot reach.
	errFamily = errors.New("destination of the other address family")
	// errNoneSent is sendmmsg sending nothing without saying why.
	errNoneSent = errors.New("sendmmsg sent no datagram")
)

// udpWriter sends the datagrams a batch queued with one raw, non-blocking
// sendmmsg, made only when the poller says the socket can take them: on
// loopback and fast links the relay is bound by system calls, and net.UDPConn's
// send enters the scheduler's syscall state, waking the runtime's monitor
// thread for each datagram. A full send buffer waits in the poller. A marked
// datagram carries its class's DSCP control messages in its own header, so one
// batch mixes classes. Sending allocates nothing.
type udpWriter struct {
	rc     syscall.RawConn
	sendFn func(fd uintptr) bool // made once, so that sending allocates nothing
	inet6  bool                  // the socket is AF_INET6 (IPv4 goes as mapped)
	batch  *udpBatch             // being sent
	n      int                   // headers of the batch to send
	done   int                   // headers sent or failed
}

// newUDPWriter returns a writer of c, or an error when c has no descriptor.
func newUDPWriter(c *net.UDPConn) (*udpWriter, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	w := &udpWriter{rc: rc}
	var domain int
	var serr error
	if err := rc.Control(func(fd uintptr) { domain, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN) }); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	w.inet6 = domain == unix.AF_INET6
	w.sendFn = w.trySend
	return w, nil
}

// send sends b's queued datagrams, in order, and sets the err of each that
// could not go.
func (w *udpWriter) send(b *udpBatch) {
	w.batch, w.n, w.done = b, 0, 0
	s := &b.sys
	for i := range b.nsend {
		q := &b.sends[i]
		h := &s.shdrs[w.n].Hdr
		namelen, err := w.setName(&s.ssa[w.n], q.dst)
		if err != nil {
			q.err = err
			continue
		}
		h.Namelen = namelen
		s.siovs[w.n].Base = nil
		if len(q.b) > 0 {
			s.siovs[w.n].Base = &q.b[0]
		}
		s.siovs[w.n].SetLen(len(q.b))
		h.Control = nil
		h.SetControllen(0)
		if oob := q.mark.ControlMessages(); len(oob) > 0 {
			h.Control = &oob[0]
			h.SetControllen(len(oob))
		}
		s.sidx[w.n] = uint8(i)
		w.n++
	}
	if w.n > 0 {
		if err := w.rc.Write(w.sendFn); err != nil {
			for ; w.done < w.n; w.done++ {
				b.sends[s.sidx[w.done]].err = err
			}
		}
	}
	w.batch = nil
}

// setName writes dst into sa in the socket's family and returns its length.
func (w *udpWriter) setName(sa *unix.RawSockaddrInet6, dst netip.AddrPort) (uint32, error) {
	addr := dst.Addr().Unmap()
	if w.inet6 {
		sa.Family, sa.Addr, sa.Flowinfo, sa.Scope_id = unix.AF_INET6, addr.As16(), 0, 0
		putPort(&sa.Port, dst.Port())
		return unix.SizeofSockaddrInet6, nil
	}
	if !addr.Is4() {
		return 0, errFamily
	}
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
	sa4.Family, sa4.Addr, sa4.Zero = unix.AF_INET, addr.As4(), [8]uint8{}
	putPort(&sa4.Port, dst.Port())
	return unix.SizeofSockaddrInet4, nil
}

// putPort stores a port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// trySend sends the headers not yet sent without blocking; when the send buffer
// is full it returns false, and the poller waits until the socket is writable.
// sendmmsg stops at a datagram that fails, reporting those before it; called
// again at the one that failed, it reports that one's error, which then is
// that datagram's alone.
func (w *udpWriter) trySend(fd uintptr) bool {
	s := &w.batch.sys
	for w.done < w.n {
		n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.shdrs[w.done])),
			uintptr(w.n-w.done), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == 0 && n > 0:
			w.done += int(n)
		case errno == 0:
			// Not seen from Linux, which reports an error when the first fails;
			// no datagram may stay queued forever.
			w.batch.sends[s.sidx[w.done]].err = errNoneSent
			w.done++
		case errno == unix.EINTR:
		case errno == unix.EAGAIN:
			return false
		default:
			w.batch.sends[s.sidx[w.done]].err = errno
			w.done++
		}
	}
	return true
}

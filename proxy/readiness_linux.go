//go:build linux

package proxy

import (
	"net"
	"syscall"
	"unsafe"
)

// readiness waits until a TCP socket has bytes to read, or has reached EOF or an
// error, without reading anything. An idle relay direction waits here rather than
// inside a read, so that it holds no pooled buffer and no splice pipe (two file
// descriptors) while nothing moves: idle sessions cost sockets and goroutines only.
type readiness struct {
	rc    syscall.RawConn
	probe func(fd uintptr) bool // made once, so waiting allocates nothing
	peek  [1]byte
	inq   int32
	avail int
	err   error
}

// newReadiness returns nil when c exposes no file descriptor (not a socket).
func newReadiness(c net.Conn) *readiness {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &readiness{rc: rc}
	r.probe = r.check
	return r
}

// wait blocks until the socket is readable, honouring its read deadline, and
// returns how many bytes can be read at once; 0 with a nil error means EOF.
func (r *readiness) wait() (int, error) {
	r.avail, r.err = 0, nil
	if err := r.rc.Read(r.probe); err != nil {
		return 0, err
	}
	return r.avail, r.err
}

// check peeks one byte without blocking: EAGAIN sends the poller to wait for the
// next readiness event; anything else ends the wait. FIONREAD then says how much is
// queued, so the copy that follows takes only what is there and comes back here.
func (r *readiness) check(fd uintptr) bool {
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&r.peek[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == syscall.EINTR:
			continue
		case errno == syscall.EAGAIN:
			return false
		case errno != 0:
			r.err = errno
			return true
		case n == 0:
			return true // EOF
		}
		r.inq = 0
		syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&r.inq)))
		r.avail = max(int(r.inq), 1)
		return true
	}
}

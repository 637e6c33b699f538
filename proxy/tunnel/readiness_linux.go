//go:build linux

package tunnel

import (
	"net"
	"sync"
	"syscall"
	"unsafe"
)

// readiness waits until a TCP socket has bytes to read, or has reached EOF or an
// error. An idle relay direction waits here rather than inside a read, so that it
// holds no pooled buffer and no splice pipe (two file descriptors) while nothing
// moves: idle sessions cost sockets and goroutines only.
type readiness struct {
	rc syscall.RawConn
	// Both made once, so that waiting allocates nothing.
	probe   func(fd uintptr) bool
	reading func(fd uintptr) bool
	avail   int
	buf     *[smallReadSize]byte
	err     error
}

// smallReadSize is the most an unshaped direction reads with one plain read
// before it moves on to splice: small messages (a call's packets, a request, a
// handshake) cost one read and one write instead of two splices and a size
// probe, and a read that fills the buffer means a stream worth splicing.
const smallReadSize = 16 << 10

// smallReads holds the buffers of small reads. A buffer leaves the pool only when
// the socket has bytes for it, so a waiting direction holds none.
var smallReads = sync.Pool{New: func() any { return new([smallReadSize]byte) }}

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
	r.reading = r.tryRead
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

// maxProbe caps the count a probe reports; callers move at most a chunk anyway.
const maxProbe = 1 << 30

// check asks without blocking how many bytes are queued: MSG_PEEK|MSG_TRUNC on a
// TCP socket counts the queued bytes (up to the length given) without copying any.
// EAGAIN sends the poller to wait for the next readiness event; anything else ends
// the wait. The call never blocks, so it skips the scheduler's system call
// bookkeeping.
func (r *readiness) check(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, 0, maxProbe,
			syscall.MSG_PEEK|syscall.MSG_TRUNC|syscall.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			r.avail = int(n) // 0: EOF
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			r.err = errno
			return true
		}
	}
}

// read blocks until the socket is readable, honouring its read deadline, then
// reads once into a pooled buffer, which the caller returns with release. n == 0
// with a nil error means EOF (and no buffer is held).
func (r *readiness) read() (buf []byte, err error) {
	r.buf, r.avail, r.err = nil, 0, nil
	if err := r.rc.Read(r.reading); err != nil {
		return nil, err
	}
	if r.buf == nil {
		return nil, r.err
	}
	return r.buf[:r.avail], nil
}

// release returns the buffer of the last read to the pool.
func (r *readiness) release() {
	if r.buf != nil {
		smallReads.Put(r.buf)
		r.buf = nil
	}
}

func (r *readiness) tryRead(fd uintptr) bool {
	b := smallReads.Get().(*[smallReadSize]byte)
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), smallReadSize)
		switch errno {
		case 0:
			if n == 0 {
				smallReads.Put(b) // EOF
				return true
			}
			r.buf, r.avail = b, int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			smallReads.Put(b)
			return false
		default:
			smallReads.Put(b)
			r.err = errno
			return true
		}
	}
}

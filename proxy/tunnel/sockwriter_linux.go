//go:build linux

package tunnel

import (
	"net"
	"os"
	"syscall"
	"unsafe"
)

// sockWriter writes to a TCP socket with raw system calls on its non-blocking
// descriptor, made only when the poller says they can proceed, honouring the
// connection's write deadline; see splicer for why. The relay writes small
// messages with it. Calls must not be concurrent.
type sockWriter struct {
	rc      syscall.RawConn
	stall   stallDeadline
	buf     []byte // the caller's buffer during a call
	n       int
	err     error
	writeFn func(fd uintptr) bool // made once, so that a call allocates nothing
}

func newSockWriter(c *net.TCPConn) *sockWriter {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	s := &sockWriter{rc: rc, stall: stallDeadline{conn: c}}
	s.writeFn = s.tryWrite
	return s
}

// Write writes b whole, waiting while the socket's buffer is full. When the
// write deadline passes, it goes on if bytes went out since the deadline was
// set, and fails with errStalled if none did.
func (s *sockWriter) Write(b []byte) (int, error) {
	s.stall.begin()
	defer s.stall.end()
	s.buf, s.n, s.err = b, 0, nil
	mark := 0
	var err error
	for {
		err = s.rc.Write(s.writeFn)
		if !s.stall.retry(err, s.n > mark) {
			break
		}
		mark = s.n
	}
	n := s.n
	s.buf = nil
	if err == nil {
		err = s.err
	}
	return n, s.stall.named(err)
}

func (s *sockWriter) tryWrite(fd uintptr) bool {
	for s.n < len(s.buf) {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.buf[s.n])), uintptr(len(s.buf)-s.n))
		switch errno {
		case 0:
			s.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.err = os.NewSyscallError("write", errno)
			return true
		}
	}
	return true
}

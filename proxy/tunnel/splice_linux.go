//go:build linux

package tunnel

import (
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// pipe is a kernel pipe that splice moves a stream's bytes through without
// copying them into the process.
type pipe struct {
	r, w int
	data int // bytes spliced in and not yet out
}

// pipeSize is the capacity asked for each pipe (Linux's default pipe-max-size),
// so one splice moves up to 1 MiB; without it a pipe holds 64 KiB.
const pipeSize = 1 << 20

const fSetPipeSize = 1031 // F_SETPIPE_SZ, not in package syscall

// pipes holds idle pipes. A pipe leaves the pool only once its session has bytes
// to move, so a waiting session holds none; the GC closes pipes the pool drops.
var pipes sync.Pool

func getPipe() (*pipe, error) {
	if p, ok := pipes.Get().(*pipe); ok {
		return p, nil
	}
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[0]), fSetPipeSize, pipeSize) // best effort
	p := &pipe{r: fds[0], w: fds[1]}
	runtime.SetFinalizer(p, (*pipe).close)
	return p, nil
}

// putPipe pools p, or closes it when bytes are stuck in it (the write failed).
func putPipe(p *pipe) {
	if p.data != 0 {
		runtime.SetFinalizer(p, nil)
		p.close()
		return
	}
	pipes.Put(p)
}

func (p *pipe) close() {
	syscall.Close(p.r)
	syscall.Close(p.w)
}

// splicer moves bytes from one TCP socket to another with splice(2). It waits
// for the source and the destination through the runtime's poller like any
// socket read or write, and makes its splice calls only on non-blocking
// descriptors and only when they can proceed; they never sleep in the kernel, so
// they skip the scheduler's system call bookkeeping (which would hand the
// processor to another thread, and wake the monitor thread, for every call).
type splicer struct {
	src, dst syscall.RawConn
	// Made once, so that a step allocates nothing.
	drainFn, pumpFn func(fd uintptr) bool
	p               *pipe
	max             int // most bytes to drain in this call
	eof             bool
	err             error
	out             *sockWriter // small messages' writes to dst
	stall           *stallDeadline
	// read holds bytes read instead of spliced when no pipe could be made (the
	// process is out of descriptors): the session goes on through a pooled
	// buffer rather than end. onPipeFailure, if set, hears of each such step.
	read          *[smallReadSize]byte
	readN         int
	onPipeFailure func(error)
	newPipe       func() (*pipe, error) // getPipe, unless a test needs failures
}

// newSplicer returns nil when either side is not a TCP socket.
func newSplicer(dst, src net.Conn) *splicer {
	s, ok1 := src.(*net.TCPConn)
	d, ok2 := dst.(*net.TCPConn)
	if !ok1 || !ok2 {
		return nil
	}
	src0, err1 := s.SyscallConn()
	dst0, err2 := d.SyscallConn()
	if err1 != nil || err2 != nil {
		return nil
	}
	sp := &splicer{src: src0, dst: dst0, out: newSockWriter(d), newPipe: getPipe}
	sp.stall = &sp.out.stall
	sp.drainFn, sp.pumpFn = sp.drain, sp.pump
	return sp
}

// write writes a small message to dst whole with the same raw calls as the
// splices: its write does not hand the processor over while the kernel delivers
// it over loopback.
func (s *splicer) write(b []byte) (int, error) { return s.out.Write(b) }

// move waits until src has bytes, moves up to max of them to dst and returns how
// many it moved; 0 and io.EOF when src has reached its end. It holds a pipe only
// from the moment bytes are there until they are written.
func (s *splicer) move(max int) (int64, error) {
	s.max, s.eof, s.err = max, false, nil
	if err := s.src.Read(s.drainFn); err != nil {
		return 0, err
	}
	switch {
	case s.err != nil:
		return 0, s.err
	case s.eof:
		return 0, io.EOF
	case s.read != nil:
		return s.writeRead()
	}
	n := int64(s.p.data)
	err := s.pumpAll()
	n -= int64(s.p.data)
	putPipe(s.p)
	s.p = nil
	return n, err
}

// pumpAll splices the pipe's bytes to dst, past the write deadline while dst
// keeps taking them (see stallDeadline).
func (s *splicer) pumpAll() error {
	s.stall.begin()
	defer s.stall.end()
	for {
		before := s.p.data
		err := s.dst.Write(s.pumpFn)
		if !s.stall.retry(err, s.p.data < before) {
			if err == nil {
				err = s.err
			}
			return s.stall.named(err)
		}
	}
}

// writeRead writes the bytes drain read into a buffer, for want of a pipe.
func (s *splicer) writeRead() (int64, error) {
	n, err := s.out.Write(s.read[:s.readN])
	smallReads.Put(s.read)
	s.read = nil
	return int64(n), err
}

// moveAll moves exactly n bytes that src already holds (a shaped chunk whose
// tokens were taken), in as many splices as it takes.
func (s *splicer) moveAll(n int) (int64, error) {
	var moved int64
	for moved < int64(n) {
		m, err := s.move(n - int(moved))
		moved += m
		if err != nil {
			return moved, err
		}
	}
	return moved, nil
}

func (s *splicer) drain(fd uintptr) bool {
	p := s.p
	if p == nil {
		var err error
		if p, err = s.newPipe(); err != nil {
			if s.onPipeFailure != nil {
				s.onPipeFailure(err)
			}
			return s.readInstead(fd)
		}
	}
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SPLICE, fd, 0, uintptr(p.w), 0, uintptr(min(s.max, pipeSize)),
			spliceMove|spliceNonblock)
		switch errno {
		case 0:
			if n == 0 {
				s.eof = true
				putPipe(p)
				return true
			}
			p.data += int(n)
			s.p = p
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			putPipe(p)
			return false
		default:
			putPipe(p)
			s.err = os.NewSyscallError("splice", errno)
			return true
		}
	}
}

// readInstead is drain through a pooled buffer: one read of up to s.max bytes.
func (s *splicer) readInstead(fd uintptr) bool {
	b := smallReads.Get().(*[smallReadSize]byte)
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(min(s.max, smallReadSize)))
		switch errno {
		case 0:
			if n == 0 {
				s.eof = true
				smallReads.Put(b)
				return true
			}
			s.read, s.readN = b, int(n)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			smallReads.Put(b)
			return false
		default:
			smallReads.Put(b)
			s.err = os.NewSyscallError("read", errno)
			return true
		}
	}
}

func (s *splicer) pump(fd uintptr) bool {
	for s.p.data > 0 {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(s.p.r), 0, fd, 0, uintptr(s.p.data),
			spliceMove|spliceNonblock)
		switch errno {
		case 0:
			if n == 0 {
				s.err = io.ErrShortWrite
				return true
			}
			s.p.data -= int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.err = os.NewSyscallError("splice", errno)
			return true
		}
	}
	return true
}

const (
	spliceMove     = 0x1 // SPLICE_F_MOVE
	spliceNonblock = 0x2 // SPLICE_F_NONBLOCK
)

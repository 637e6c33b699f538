//go:build linux

package tunnel

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// queueProbe reads how many bytes a TCP socket's peer has acknowledged
// (TCP_INFO's bytes_acked). When that grows, the peer is taking bytes, even
// while the socket's buffer is too full for a write to go on (the kernel wakes
// a writer only once much of a large buffer is free): a slow reader is not a
// stalled one. Its mark is the count at the last deadline the relay set.
type queueProbe struct {
	rc    syscall.RawConn
	ok    bool
	acked uint64
	mark  uint64
	fn    func(fd uintptr) // made once, so that a reading allocates nothing
}

// newQueueProbe returns a probe of c's TCP socket (under a TLS connection
// too), or nil when it has none.
func newQueueProbe(c net.Conn) *queueProbe {
	tc := tcpSocket(c)
	if tc == nil {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	p := &queueProbe{rc: rc}
	p.fn = p.read
	return p
}

// read reads TCP_INFO into a variable on the stack: a field would add its
// few hundred bytes to every idle session, twice (issue 24).
func (p *queueProbe) read(fd uintptr) {
	var info unix.TCPInfo
	size := uint32(unix.SizeofTCPInfo)
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.IPPROTO_TCP, unix.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	p.ok = errno == 0
	p.acked = info.Bytes_acked
}

// sample reads the acknowledged count; false when it cannot.
func (p *queueProbe) sample() bool {
	return p.rc.Control(p.fn) == nil && p.ok
}

// setMark takes the count as the mark that later progress is measured from.
func (p *queueProbe) setMark() {
	if p != nil && p.sample() {
		p.mark = p.acked
	}
}

// progressed reports whether the peer acknowledged bytes since the mark, and
// moves the mark to now.
func (p *queueProbe) progressed() bool {
	if p == nil || !p.sample() {
		return false
	}
	moved := p.acked > p.mark
	p.mark = p.acked
	return moved
}

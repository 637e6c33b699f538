//go:build unix

package httpproxy

import (
	"net"
	"syscall"
)

// quiet reports whether conn has nothing to read and has not been closed by its
// peer, without waiting: one recv(MSG_PEEK|MSG_DONTWAIT). An origin that closed
// an idle keep-alive connection shows as an end of stream here, before a request
// is lost on it.
func quiet(conn *net.TCPConn) bool {
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var b [1]byte
	ok := false
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = rerr == syscall.EAGAIN || rerr == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}

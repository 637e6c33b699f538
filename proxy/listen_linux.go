//go:build linux

package proxy

import (
	"net"
	"syscall"
)

// listenConfig sets keepalive once on the listening socket: Linux copies socket
// options to every connection it accepts, which saves four system calls per
// connection over setting them on each (what Go does by default).
func listenConfig() *net.ListenConfig {
	return &net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) {
				for _, o := range []struct{ level, name, value int }{
					{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, int(keepAliveIdle.Seconds())},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, int(keepAliveInterval.Seconds())},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, keepAliveCount},
				} {
					if err == nil {
						err = syscall.SetsockoptInt(int(fd), o.level, o.name, o.value)
					}
				}
			})
			return err
		},
	}
}

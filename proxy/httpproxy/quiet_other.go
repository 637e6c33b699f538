//go:build !unix

package httpproxy

import "net"

// quiet reports false where a socket cannot be peeked at without waiting: an
// origin connection is then never reused.
func quiet(*net.TCPConn) bool { return false }

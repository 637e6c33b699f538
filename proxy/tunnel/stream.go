package tunnel

import (
	"net"
)

// What the core needs of a client's side beyond a net.Conn, and where it
// finds it. A client speaks to the proxy over a TCP socket, a TLS connection
// on one, or a stream of a multiplexed connection (HTTP/2); the core asks each
// for what it supports, so that no front silently loses a feature:
//
//   - splice and the readiness check: a *net.TCPConn on both sides (zero-copy);
//     anything else is copied through pooled buffers;
//   - socket options (DSCP marks, the reset of a cut): the TCP socket itself,
//     or the one a TLS connection runs on ([tcpSocket]); a stream of a
//     multiplexed connection has no socket of its own and resets itself
//     ([streamResetter]);
//   - half-close: CloseWrite, which TCP sockets and TLS connections have;
//   - writes retried after a timeout that made progress (the stall rule): TCP
//     sockets only, since a TLS connection's state is lost once a write timed
//     out ([retryableWrites]).

// netConner is a connection layered on another, as *tls.Conn is.
type netConner interface{ NetConn() net.Conn }

// streamResetter is a client side that is one stream of a multiplexed
// connection: Reset ends it with an error the client sees (HTTP/2's
// RST_STREAM), where a socket would get a TCP reset.
type streamResetter interface{ Reset() }

// tcpSocket returns the TCP socket c runs on: c itself, or the socket under a
// TLS connection; nil for anything else.
func tcpSocket(c any) *net.TCPConn {
	for range 4 { // layers: a TLS connection on a socket is two
		switch x := c.(type) {
		case *net.TCPConn:
			return x
		case netConner:
			c = x.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// retryableWrites reports whether a write to c that timed out after moving
// bytes may be tried again (see stallDeadline): true of sockets, false of TLS
// connections, whose state a timed-out write corrupts.
func retryableWrites(c net.Conn) bool {
	switch c.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// closeNow closes c without waiting on its peer: a TLS connection's socket
// first, since closing a TLS connection first writes a close_notify alert, which
// may wait seconds for a peer that reads nothing. A session's graceful end
// sends the alert through the relay's half-close instead.
func closeNow(c net.Conn) {
	if under, ok := c.(netConner); ok {
		under.NetConn().Close()
	}
	c.Close()
}

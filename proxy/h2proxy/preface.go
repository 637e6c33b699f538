package h2proxy

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
)

// clientFirst is a TLS connection whose first bytes from the client were read
// before the HTTP/2 server started, and are read again from it first.
//
// Why: Firefox opens connections to an HTTPS proxy ahead of need, and when
// the server's SETTINGS arrive before Firefox has started its HTTP/2 session
// on such a connection, Firefox's session never sees them, fails with "First
// Frame Type Must Be Settings" and drops the connection (Firefox ESR 153,
// seen in its nsHttp log). RFC 9113 §3.4 lets a server send its preface
// after the client's, so this one waits for the client to speak first, under
// the TLS handshake's deadline: a connection that never speaks holds only its
// handshake slot until then.
type clientFirst struct {
	net.Conn
	first []byte
}

// waitForClient reads the first bytes the client sends on nc (at most the
// length of the client preface) and returns a connection that reads them
// again, then the rest.
func waitForClient(nc net.Conn) (net.Conn, error) {
	buf := make([]byte, len(http2ClientPreface))
	n, err := nc.Read(buf)
	if n == 0 {
		if err == nil {
			err = io.ErrNoProgress
		}
		return nil, fmt.Errorf("waiting for the client's HTTP/2 preface: %w", err)
	}
	c := &clientFirst{Conn: nc, first: buf[:n]}
	if tc, ok := nc.(tlsConn); ok {
		return &clientFirstTLS{clientFirst: c, tls: tc}, nil
	}
	return c, nil
}

// http2ClientPreface is what every HTTP/2 client sends first (RFC 9113 §3.4).
const http2ClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

func (c *clientFirst) Read(p []byte) (int, error) {
	if len(c.first) > 0 {
		n := copy(p, c.first)
		c.first = c.first[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// tlsConn is what golang.org/x/net/http2 looks for to check the version and
// cipher suite of a TLS connection.
type tlsConn interface {
	ConnectionState() tls.ConnectionState
}

// clientFirstTLS keeps the TLS state visible through the wrapper.
type clientFirstTLS struct {
	*clientFirst
	tls tlsConn
}

func (c *clientFirstTLS) ConnectionState() tls.ConnectionState { return c.tls.ConnectionState() }

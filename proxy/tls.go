package proxy

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tlscert"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// ServeTLS is [Server.Serve] for the HTTPS listener (tls.listen): each
// connection's TLS handshake runs under the handshake deadline and budget, with
// the configuration [Server.SetTLSConfig] set last; then ALPN "h2" chooses the
// HTTP/2 front and anything else the first byte, as on the plain port (HTTP, or
// SOCKS5 inside TLS).
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.tlsConfig.Load() == nil {
		ln.Close()
		return errNoTLSConfig
	}
	s.core.SetHTTPSPort(tunnel.AddrPortOf(ln.Addr()).Port())
	return s.serveListener(ln, s.fronts.tls)
}

// Listening records the addresses of the plain and HTTPS listeners (nil: none)
// before they serve, for what fronts tell clients about them (the PAC file,
// require_tls's refusal); Serve and ServeTLS record them too, as they start.
func (s *Server) Listening(plain, https net.Addr) {
	if plain != nil {
		s.core.SetProxyPort(tunnel.AddrPortOf(plain).Port())
	}
	if https != nil {
		s.core.SetHTTPSPort(tunnel.AddrPortOf(https).Port())
	}
}

// SetTLSConfig sets the TLS configuration of handshakes from now on (a reload's
// client CAs, say); connections already up keep theirs. The certificate itself
// follows its store without a new configuration.
func (s *Server) SetTLSConfig(c *tls.Config) { s.tlsConfig.Store(c) }

// tlsServer returns the TLS server side of a client's connection nc, whose raw
// bytes it reads through r (the handshake reader, which moves the connection's
// slot on its first byte and holds what came after a balancer's PROXY header).
func (s *Server) tlsServer(nc net.Conn, hr *handshakeReader) *tls.Conn {
	var r io.Reader = hr
	if hr.br != nil {
		r = hr.br
	}
	return tls.Server(&rawConn{Conn: nc, r: r}, s.tlsConfig.Load())
}

// rawConn is a client's socket read through the handshake's reader; NetConn
// gives the socket itself, for socket options.
type rawConn struct {
	net.Conn
	r io.Reader
}

func (c *rawConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *rawConn) NetConn() net.Conn          { return c.Conn }

// handshakeTLS runs the connection's TLS handshake under its deadline and
// returns the protocol ALPN chose; false, having recorded why, when it failed.
func (s *Server) handshakeTLS(conn *tunnel.Conn) (string, bool) {
	tc := conn.Net().(*tls.Conn)
	deadline := conn.Start().Add(conn.Policy().Config.Timeouts.Handshake)
	ctx, cancel := context.WithDeadline(conn.Context(), deadline)
	defer cancel()
	err := tc.HandshakeContext(ctx)
	if err == nil {
		return tc.ConnectionState().NegotiatedProtocol, true
	}
	reason := tlscert.FailureReason(err)
	if ctx.Err() != nil && conn.Context().Err() == nil && time.Now().After(deadline) {
		reason = tlscert.FailTimeout
	}
	s.rec.TLSHandshakeFailed(reason)
	sess := conn.NewSession(metrics.FrontNone)
	sess.Refuse(metrics.ResultProtocolError, "tls_"+reason)
	if reason == tlscert.FailTimeout || reason == tlscert.FailClientClosed || conn.Evicted() {
		sess.Log().Debug("TLS handshake failed", "reason", reason, "err", err)
	} else {
		sess.Log().Info("TLS handshake failed", "reason", reason, "err", err)
	}
	return "", false
}

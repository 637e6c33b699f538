package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

// ListenAndServe listens on the config's listen address and serves.
func (s *Server) ListenAndServe() error {
	ln, err := Listen(context.Background(), s.Config().Listen)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until the server is shut down; it then returns
// [ErrServerClosed]. It closes ln. Each connection's first byte chooses its
// front: 0x05 SOCKS5, a letter (an HTTP method) the HTTP proxy.
func (s *Server) Serve(ln net.Listener) error {
	s.core.SetProxyPort(tunnel.AddrPortOf(ln.Addr()).Port())
	return s.serveListener(ln, s.fronts.plain)
}

// ServeHTTPProxy is [Server.Serve] for a listener of HTTP proxy clients only
// (http.listen): a SOCKS5 client is refused there.
func (s *Server) ServeHTTPProxy(ln net.Listener) error {
	return s.serveListener(ln, s.fronts.http)
}

func (s *Server) serveListener(ln net.Listener, kind *listenerKind) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	s.core.AddOwnAddr(tunnel.AddrPortOf(ln.Addr()))
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if !isTemporary(err) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors and the like: back off as net/http does
			// rather than spin, and log once per wait.
			backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.admit(conn, kind)
	}
}

// isTemporary reports whether an accept error is worth retrying.
func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary() || tunnel.IsTimeout(err)
}

// admit applies the checks that need no byte from the client, takes a handshake
// slot (evicting an unfinished handshake when a budget is full; see
// handshakeBudget), then starts the connection's goroutine. A refused connection
// is closed at once. A load balancer's connection first has its PROXY header read
// (balanced.go), whose client takes these checks instead. fronts are the
// listener's kind.
func (s *Server) admit(nc net.Conn, kind *listenerKind) {
	peer := tunnel.AddrPortOf(nc.RemoteAddr())
	if s.fromBalancer(peer) {
		s.core.Go(func() { s.serveBalanced(nc, peer, kind) })
		return
	}
	if c := s.accept(nc, peer, nil, kind); c != nil {
		s.core.Go(func() { s.serve(c, kind) })
	}
}

// accept is admit's checks for a client at peer; hr, when not nil, holds what
// the client sent after its PROXY header. On the HTTPS listener, the
// connection's side the fronts see is a TLS server connection, whose handshake
// serve runs. It returns nil, having closed nc, when the client is refused.
func (s *Server) accept(nc net.Conn, peer netip.AddrPort, hr *handshakeReader, kind *listenerKind) *client {
	pol := s.core.Policy()
	if !tunnel.AllowedClient(pol.Config.Access.ClientPrefixes, peer.Addr()) {
		nc.Close()
		s.rec.SessionRejected(metrics.FrontNone, metrics.CommandNone, shaping.Other, metrics.ResultClientDenied)
		s.log.Info("client refused", "client", peer.String(), "reason", metrics.ResultClientDenied)
		return nil
	}
	c := &client{srv: s, key: clientKey(peer.Addr()), budgets: s.Budgets(), hr: hr}
	if c.hr == nil {
		c.hr = &handshakeReader{nc: nc}
	}
	if kind.tls {
		nc = s.tlsServer(nc, c.hr)
	}
	// The hooks are set before the connection is visible to Shutdown, which may
	// end it at once.
	c.conn = s.core.NewConn(nc, peer, tunnel.ConnHooks{
		Establish: c.establish,
		Idle:      c.idle,
		Release:   c.release,
		Stream:    c.stream,
		Ended:     func() { s.removeClient(c) },
	})
	if !s.addClient(c) {
		nc.Close()
		return nil
	}
	var victim *client
	c.hs, victim = s.handshakes.admit(c.key, c, c.budgets, stageSilent)
	c.hr.watch(c)
	if victim != nil {
		victim.conn.Evict()
	}
	return c
}

// serve reads the connection's first byte under the handshake deadline and hands
// the connection to the front it chooses in the listener's table, after the TLS
// handshake on the HTTPS listener (whose ALPN protocol may choose a front of
// its own: HTTP/2); it ends the connection when the front returns, unless a
// relay took it over.
func (s *Server) serve(c *client, kind *listenerKind) {
	conn := c.conn
	defer func() {
		if !conn.Detached() {
			conn.End()
		}
	}()
	defer s.core.Recover(conn)
	nc := conn.Net()
	nc.SetDeadline(conn.Start().Add(conn.Policy().Config.Timeouts.Handshake))
	var br *bufio.Reader
	switch {
	case kind.tls:
		proto, ok := s.handshakeTLS(conn)
		if !ok {
			return
		}
		if front := kind.alpn[proto]; front != nil {
			front.Serve(conn, nil)
			return
		}
		br = tunnel.GetReader(nc)
	case c.hr.br != nil:
		br = c.hr.br
	default:
		br = tunnel.GetReader(c.hr)
	}
	defer tunnel.PutReader(br)
	if front := s.choose(conn, br, kind.fronts); front != nil {
		front.Serve(conn, br)
	}
}

// choose returns the front the connection's first byte asks for, or nil, having
// recorded why, when there is none: nothing came (a probe, a scan, a slowloris
// that gave up or was evicted), a PROXY header from an untrusted address, or
// an unknown protocol.
func (s *Server) choose(conn *tunnel.Conn, br *bufio.Reader, fronts *frontTable) Front {
	b, err := br.Peek(1)
	switch {
	case err != nil:
		sess := conn.NewSession(metrics.FrontNone)
		sess.Log().Debug("no request", "err", err)
		if tunnel.IsTimeout(err) {
			sess.Closing(tunnel.ReasonTimeout)
		}
	case hasProxyHeader(br):
		conn.NewSession(metrics.FrontNone).Log().Info("PROXY header from an address not in access.proxy_protocol.trusted")
	case fronts[b[0]] != nil:
		return fronts[b[0]]
	default:
		// Neither protocol: a SOCKS4 client, TLS to the wrong port, a scan.
		conn.NewSession(metrics.FrontNone).Log().Info("unknown protocol", "first_byte", b[0])
	}
	return nil
}

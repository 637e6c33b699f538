package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// [ErrServerClosed]. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
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
		s.admit(conn)
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
// is closed at once.
func (s *Server) admit(nc net.Conn) {
	pol := s.core.Policy()
	peer := tunnel.AddrPortOf(nc.RemoteAddr())
	if !tunnel.AllowedClient(pol.Config.Access.ClientPrefixes, peer.Addr()) {
		nc.Close()
		s.rec.SessionRejected(metrics.FrontNone, metrics.CommandNone, shaping.Other, metrics.ResultClientDenied)
		s.log.Info("client refused", "client", peer.String(), "reason", metrics.ResultClientDenied)
		return
	}
	c := &client{srv: s, key: clientKey(peer.Addr()), budgets: s.Budgets()}
	// The hooks are set before the connection is visible to Shutdown, which may
	// end it at once.
	c.conn = s.core.NewConn(nc, peer, tunnel.ConnHooks{
		Establish: c.establish,
		Release:   c.release,
		Ended:     func() { s.removeClient(c) },
	})
	if !s.addClient(c) {
		nc.Close()
		return
	}
	var victim *client
	c.hs, victim = s.handshakes.admit(c.key, c, c.budgets)
	if victim != nil {
		victim.conn.Evict()
	}
	go s.serve(c)
}

// serve reads the connection's first byte under the handshake deadline and hands
// the connection to the front it chooses; it ends the connection when the front
// returns, unless a relay took it over.
func (s *Server) serve(c *client) {
	conn := c.conn
	defer func() {
		if !conn.Detached() {
			conn.End()
		}
	}()
	defer s.core.Recover(conn)
	nc := conn.Net()
	nc.SetDeadline(conn.Start().Add(conn.Policy().Config.Timeouts.Handshake))
	br := tunnel.GetReader(&handshakeReader{c: c})
	defer tunnel.PutReader(br)
	if _, err := br.Peek(1); err != nil {
		// Nothing came: a probe, a scan, a slowloris that gave up or was evicted.
		s := conn.NewSession(metrics.FrontNone)
		s.Log().Debug("no request", "err", err)
		if tunnel.IsTimeout(err) {
			s.Reason = tunnel.ReasonTimeout
		}
		return
	}
	s.socks.Serve(conn, br)
}

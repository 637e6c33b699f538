package socks5

import (
	"context"
	"net"
	"net/netip"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// bind serves BIND. BIND opens a port that outsiders connect to, which is exactly
// the inbound path a Skype supernode needs, so it is refused and counted unless
// access.bind is on.
func bind(s *tunnel.Session, req tunnel.Request) {
	if !s.Conn().Policy().Config.Access.Bind {
		reply(s, replyNotAllowed, metrics.ResultCommandRefused)
		s.Core().Recorder().InboundRefused(metrics.InboundBind)
		s.Log().Info("bind refused", "destination", req.Requested)
		return
	}
	if o := s.Admit(); !o.OK() {
		refuse(s, o)
		return
	}
	peer, err := acceptOne(s, req.Target.Addr)
	if err != nil {
		s.Log().Info("bind failed", "err", err)
		return
	}
	s.NotePeer(tunnel.AddrPortOf(peer.RemoteAddr()))
	s.Established()
	s.Relay(peer, nil)
}

// acceptOne listens beside the client-facing address, sends the first reply, and
// accepts one connection from the expected peer (RFC 1928: BIND's DST.ADDR) within
// the dial timeout, then sends the second reply.
func acceptOne(s *tunnel.Session, expected netip.Addr) (net.Conn, error) {
	conn := s.Conn()
	nc := conn.Net()
	local := tunnel.AddrPortOf(nc.LocalAddr()).Addr()
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		reply(s, replyGeneralFailure, metrics.ResultDialFailed)
		return nil, err
	}
	defer ln.Close()
	if !conn.AddCloser(ln) {
		return nil, net.ErrClosed
	}
	if err := writeReply(nc, replySucceeded, tunnel.AddrPortOf(ln.Addr())); err != nil {
		return nil, err
	}
	dial := conn.Policy().Config.Timeouts.Dial
	ctx, cancel := context.WithTimeout(conn.Context(), dial)
	defer cancel()
	ln.SetDeadline(time.Now().Add(dial))
	for ctx.Err() == nil {
		c, err := ln.AcceptTCP()
		if err != nil {
			reply(s, replyHostUnreachable, metrics.ResultDialFailed)
			return nil, err
		}
		from := tunnel.AddrPortOf(c.RemoteAddr())
		if expected.IsValid() && !expected.IsUnspecified() && from.Addr() != expected {
			c.Close()
			s.Core().Recorder().InboundRefused(metrics.InboundBind)
			continue
		}
		if !conn.AddCloser(c) {
			return nil, net.ErrClosed
		}
		return c, writeReply(nc, replySucceeded, from)
	}
	return nil, ctx.Err()
}

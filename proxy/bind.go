package proxy

import (
	"context"
	"net"
	"net/netip"
	"time"

	socks5 "github.com/armon/go-socks5"
)

// bind serves BIND. BIND opens a port that outsiders connect to, which is exactly
// the inbound path a Skype supernode needs, so it is refused and counted unless
// access.bind is on.
func (sess *session) bind(req *socks5.Request) {
	if !sess.pol.cfg.Access.Bind {
		sess.refuse(replyNotAllowed, resultCommandRefused)
		sess.srv.rec.InboundRefused("bind")
		sess.log.Info("bind refused", "destination", sess.requested)
		return
	}
	if !sess.admitUser() {
		sess.refuse(replyNotAllowed, resultLimitReached)
		return
	}
	expected, ok := sess.destination(req)
	if !ok {
		return
	}
	peer, err := sess.acceptOne(expected.Addr)
	if err != nil {
		sess.log.Info("bind failed", "err", err)
		return
	}
	sess.dialled = peer.RemoteAddr().String()
	sess.conn.SetDeadline(time.Time{})
	sess.relayTCP(peer, nil)
}

// acceptOne listens beside the client-facing address, sends the first reply, and
// accepts one connection from the expected peer (RFC 1928: BIND's DST.ADDR) within
// the dial timeout, then sends the second reply.
func (sess *session) acceptOne(expected netip.Addr) (net.Conn, error) {
	local := addrPortOf(sess.conn.LocalAddr()).Addr()
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		sess.refuse(replyGeneralFailure, resultDialFailed)
		return nil, err
	}
	defer ln.Close()
	if !sess.addCloser(ln) {
		return nil, net.ErrClosed
	}
	if err := writeReply(sess.conn, replySucceeded, addrPortOf(ln.Addr())); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(sess.ctx, sess.pol.cfg.Timeouts.Dial)
	defer cancel()
	ln.SetDeadline(time.Now().Add(sess.pol.cfg.Timeouts.Dial))
	for ctx.Err() == nil {
		c, err := ln.AcceptTCP()
		if err != nil {
			sess.refuse(replyHostUnreachable, resultDialFailed)
			return nil, err
		}
		from := addrPortOf(c.RemoteAddr())
		if expected.IsValid() && !expected.IsUnspecified() && from.Addr().Unmap() != expected {
			c.Close()
			sess.srv.rec.InboundRefused("bind")
			continue
		}
		if !sess.addCloser(c) {
			return nil, net.ErrClosed
		}
		return c, writeReply(sess.conn, replySucceeded, from)
	}
	return nil, ctx.Err()
}

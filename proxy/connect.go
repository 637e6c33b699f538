package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	socks5 "github.com/armon/go-socks5"

	"github.com/sockshaper/sockshaper/shaping"
)

// sniWait bounds how long a CONNECT to a bare IP waits for the client's first bytes
// to read a TLS server name: TLS clients send their ClientHello at once, and anything
// else loses at most this much latency on its first byte.
const sniWait = 300 * time.Millisecond

// connect serves CONNECT: policy, resolution, dial, reply, classification, relay.
func (sess *session) connect(req *socks5.Request, pending []byte) {
	cfg := sess.pol.cfg
	if !sess.admitUser() {
		sess.refuse(replyNotAllowed, resultLimitReached)
		return
	}
	dest, ok := sess.destination(req)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(sess.ctx, cfg.Timeouts.Dial)
	addrs, err := sess.srv.resolveAllowed(ctx, cfg.Access.DeniedPrefixes, dest.Host, dest.Addr, dest.Port)
	if err != nil {
		cancel()
		sess.refuseResolve(err)
		return
	}
	dest.Addr = addrs[0]
	sess.app = sess.pol.classifier.Classify(dest)
	target, err := sess.dial(ctx, addrs, dest.Port)
	cancel()
	if err != nil {
		sess.refuse(dialReplyCode(err), resultDialFailed)
		sess.log.Info("dial failed", "destination", sess.requested, "err", err)
		return
	}
	if !sess.addCloser(target) {
		return
	}
	sess.dialled = target.RemoteAddr().String()
	if err := writeReply(sess.conn, replySucceeded, addrPortOf(target.LocalAddr())); err != nil {
		sess.result = resultProtocolError
		return
	}
	sess.srv.rec.Handshake(time.Since(sess.start))
	sess.conn.SetDeadline(time.Time{})
	dest.Addr = addrPortOf(target.RemoteAddr()).Addr()
	pending = sess.classifyBySNI(dest, pending)
	sess.relayTCP(target, pending)
}

// destination turns the request's address into a classifier target, refusing
// denied literal addresses (and the proxy's own listeners) at once.
func (sess *session) destination(req *socks5.Request) (shaping.Target, bool) {
	t := shaping.Target{Transport: "tcp", Host: req.DestAddr.FQDN, Port: uint16(req.DestAddr.Port)}
	if t.Host == "" {
		t.Addr, _ = netip.AddrFromSlice(req.DestAddr.IP)
		t.Addr = t.Addr.Unmap()
		if sess.srv.deniedDestination(sess.pol.cfg.Access.DeniedPrefixes, netip.AddrPortFrom(t.Addr, t.Port)) {
			sess.refuse(replyNotAllowed, resultDestinationDenied)
			sess.log.Info("destination denied", "destination", sess.requested)
			return t, false
		}
	}
	return t, true
}

// refuseResolve replies to a resolution that failed or found only denied addresses.
func (sess *session) refuseResolve(err error) {
	if errors.Is(err, errDestinationDenied) {
		sess.refuse(replyNotAllowed, resultDestinationDenied)
		sess.log.Info("destination denied", "destination", sess.requested)
		return
	}
	sess.refuse(replyHostUnreachable, resultDialFailed)
	sess.log.Info("resolve failed", "destination", sess.requested, "err", err)
}

// dial tries each allowed address in turn until one connects or ctx ends.
func (sess *session) dial(ctx context.Context, addrs []netip.Addr, port uint16) (*net.TCPConn, error) {
	var d net.Dialer
	start := time.Now()
	var err error
	for _, a := range addrs {
		var c net.Conn
		c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(a, port).String())
		if err == nil {
			sess.srv.rec.Dialed("ok", time.Since(start))
			return c.(*net.TCPConn), nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	sess.srv.rec.Dialed("failed", time.Since(start))
	return nil, fmt.Errorf("dial: %w", err)
}

// classifyBySNI reads the client's first bytes when the request held an address
// and the server name could change the class. The bytes read are returned with
// pending so that they are relayed unchanged.
func (sess *session) classifyBySNI(dest shaping.Target, pending []byte) []byte {
	if !sess.pol.classifier.WantsSNI(dest) {
		return pending
	}
	buf := make([]byte, len(pending), len(pending)+shaping.MaxClientHelloBytes)
	copy(buf, pending)
	sess.conn.SetReadDeadline(time.Now().Add(sniWait))
	defer sess.conn.SetReadDeadline(time.Time{})
	for len(buf) < cap(buf) {
		sni, err := shaping.ParseClientHelloSNI(buf)
		if !errors.Is(err, shaping.ErrIncomplete) {
			if sni != "" {
				dest.SNI = sni
				sess.app = sess.pol.classifier.Classify(dest)
			}
			break
		}
		n, rerr := sess.conn.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if rerr != nil {
			break
		}
	}
	return buf
}

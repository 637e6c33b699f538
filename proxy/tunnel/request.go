package tunnel

import (
	"net"
	"net/netip"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
)

// Request is what a front read from its client for one session: the command,
// the destination as the core needs it, and the destination as the client
// wrote it. Credentials are not part of it: a front logs its client in first
// ([Session.Login]), because SOCKS5 does so before the request is sent.
type Request struct {
	Command   string // a metrics.Command* value
	Target    Target // the destination; zero for a request to the proxy itself
	Requested string // as the client wrote it, for logs and the accounting line
}

// Answer writes a front's reply to its client once the core has done what a
// request asked or refused it: o is the outcome (a refusal the front maps to
// its protocol's code; never Gone, which gets no reply), and bound is the
// address of the proxy's side of the tunnel (SOCKS5's BND.ADDR) when o is OK.
// After a success reply it returns the bytes its client sent after the request
// (a TLS ClientHello sent before the reply came, say), which go to the
// destination first. An error means the client did not get the reply: the
// session ends.
type Answer func(o Outcome, bound netip.AddrPort) (pending []byte, err error)

// Admit is a request's way in once its client has logged in (where a login is
// needed): the connection takes a session slot of its client and gives back its
// handshake slot (see [Conn.Establish]), then max_sessions_per_user and the
// user's quota apply. On a refusal the session has its result; the front
// answers, unless the Outcome is Gone.
func (s *Session) Admit() Outcome {
	if o := s.conn.Establish(); !o.OK() {
		return s.refuse(o)
	}
	return s.admitUser()
}

// Connect serves a TCP tunnel (SOCKS5 CONNECT, HTTP CONNECT) from start to
// end, in the core's order: the request is recorded, admitted ([Session.Admit]),
// checked against the policy, resolved, classified and dialled ([Session.Dial]);
// answer writes the front's reply; on success the handshake's time is recorded,
// the handshake deadline lifted, the session classified again by its TLS server
// name when the destination was an address, and the relay takes the
// connection over, starting with the bytes the client sent after its request.
// It returns the outcome: a refusal has been recorded and answered.
func (s *Session) Connect(req Request, answer Answer) Outcome {
	s.Read(req)
	o := s.Admit()
	var dst *net.TCPConn
	if o.OK() {
		dst, o = s.Dial(req.Target)
	}
	if !o.OK() {
		if o.Refusal != Gone {
			answer(o, netip.AddrPort{})
		}
		return o
	}
	pending, err := answer(o, AddrPortOf(dst.LocalAddr()))
	if err != nil {
		s.log.Debug("reply not sent", "err", err)
		return s.refuse(Outcome{Refusal: Gone, Result: metrics.ResultProtocolError, Err: err})
	}
	s.Established()
	pending = s.ClassifyBySNI(req.Target, AddrPortOf(dst.RemoteAddr()), pending)
	s.Relay(dst, pending)
	return o
}

// Established records that the client has its success reply: the handshake's
// time goes to the metrics and the handshake deadline is lifted, so that only
// the relay's own timeouts apply from here.
func (s *Session) Established() {
	s.core.rec.Handshake(time.Since(s.start))
	s.conn.nc.SetDeadline(time.Time{})
}

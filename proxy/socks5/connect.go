package socks5

import (
	"time"

	socks5 "github.com/armon/go-socks5"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// connect serves CONNECT: the user's session cap, then the core's dial (policy,
// resolution, class), the reply with the address bound, classification by TLS
// server name, and the relay, which takes the connection over.
func connect(s *tunnel.Session, req *socks5.Request, pending []byte) {
	if o := s.AdmitUser(); !o.OK() {
		refuse(s, o)
		return
	}
	t := target(req.DestAddr)
	dst, o := s.Dial(t)
	if !o.OK() {
		refuse(s, o)
		return
	}
	nc := s.Conn().Net()
	if err := writeReply(nc, replySucceeded, tunnel.AddrPortOf(dst.LocalAddr())); err != nil {
		s.Result = metrics.ResultProtocolError
		return
	}
	s.Core().Recorder().Handshake(time.Since(s.Start()))
	nc.SetDeadline(time.Time{})
	pending = s.ClassifyBySNI(t, tunnel.AddrPortOf(dst.RemoteAddr()), pending)
	s.Relay(dst, pending)
}

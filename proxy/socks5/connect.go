package socks5

import (
	"net/netip"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// connect serves CONNECT through the core, which admits, dials and relays; the
// front writes the reply: the address bound on success, the refusal's code
// otherwise.
func connect(s *tunnel.Session, req tunnel.Request, pending []byte) {
	nc := s.Conn().Net()
	s.Connect(req, func(o tunnel.Outcome, bound netip.AddrPort) ([]byte, error) {
		return pending, writeReply(nc, replyCode(o.Refusal), bound)
	})
}

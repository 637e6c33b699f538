package httpproxy

import (
	"bufio"
	"net/http"
	"net/netip"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// established is the answer to a CONNECT that the proxy tunnels.
const established = "HTTP/1.1 200 Connection established\r\nVia: " + via + "\r\n\r\n"

// connect serves CONNECT through the core, which admits, dials and relays; the
// front answers: 200 on success, then the bytes the client sent after its head
// go first to the destination; the refusal's status otherwise, and the
// connection stays open for another request.
func (c *client) connect(s *tunnel.Session, req *Request, r tunnel.Request) {
	if req.HasBody() {
		// A CONNECT's bytes after the head are the tunnel's; a body would be
		// read as tunnel data by one side and as a body by the other.
		c.badHead(s, badRequest("CONNECT with a body"))
		return
	}
	c.up.close(c.conn)
	c.up = nil
	s.Connect(r, func(o tunnel.Outcome, _ netip.AddrPort) ([]byte, error) {
		if !o.OK() {
			c.refuse(s, o, req)
			return nil, nil
		}
		if _, err := c.nc.Write(c.established()); err != nil {
			c.closing = true
			return nil, err
		}
		return takeBuffered(c.br, c.src), nil
	})
}

// takeBuffered copies out the bytes a client sent after its CONNECT head (some
// send their TLS ClientHello before the 200 arrives), from the front's reader
// and then the server's, so that both can go back to their pools.
func takeBuffered(readers ...*bufio.Reader) []byte {
	var out []byte
	for _, br := range readers {
		if br == nil || br.Buffered() == 0 {
			continue
		}
		b, _ := br.Peek(br.Buffered())
		out = append(out, b...)
		br.Discard(len(b))
	}
	return out
}

// portAllowed applies http.connect_ports to a CONNECT or a forwarded request,
// and answers 403 when it refuses the destination's port.
func (c *client) portAllowed(s *tunnel.Session, req *Request, d destination) bool {
	if c.cfg.HTTP.ConnectPortAllowed(d.target.Port) {
		return true
	}
	s.PortDenied()
	c.send(reply{status: http.StatusForbidden, text: "sockshaper: this port is not allowed (http.connect_ports)"}, req)
	return false
}

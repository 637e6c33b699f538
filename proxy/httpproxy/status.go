package httpproxy

import (
	"io"
	"net/http"
	"strconv"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// via names the proxy in the Via field of what it forwards (RFC 9110 section
// 7.6.3), which also lets a chain of proxies notice a loop.
const via = "1.1 sockshaper"

// reply is a response the proxy writes itself (an error, the PAC file).
type reply struct {
	status int
	text   string  // the body, text/plain, ended with a newline
	fields []Field // extra fields
	body   []byte  // instead of text, with the fields' Content-Type
	close  bool    // Connection: close, and the connection ends after it
	head   bool    // a HEAD request: fields only
}

// write sends r; errors are the client's (gone) and end the connection anyway.
func (r reply) write(w io.Writer) error {
	body := r.body
	if body == nil {
		body = []byte(r.text + "\n")
		r.fields = append(r.fields, Field{"Content-Type", "text/plain; charset=utf-8"})
	}
	b := make([]byte, 0, 256+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(r.status), 10)
	b = append(append(append(b, ' '), http.StatusText(r.status)...), "\r\n"...)
	for _, f := range r.fields {
		b = appendField(b, f.Name, f.Value)
	}
	b = appendField(b, "Content-Length", strconv.Itoa(len(body)))
	if r.close {
		b = appendField(b, "Connection", "close")
	}
	b = append(b, "\r\n"...)
	if !r.head {
		b = append(b, body...)
	}
	_, err := w.Write(b)
	return err
}

func appendField(b []byte, name, value string) []byte {
	return append(append(append(append(b, name...), ": "...), value...), "\r\n"...)
}

// refusal maps a refusal of the core to the reply a client can act on: 403 for
// policy, 429 for a user's or an address's session cap, 503 for the proxy's cap,
// 502 when the destination cannot be resolved or refuses, 504 when it does not
// answer in time. ok is false for Gone: the connection is cut, nothing is sent.
func refusal(o tunnel.Outcome) (reply, bool) {
	switch o.Refusal {
	case tunnel.Gone:
		return reply{}, false
	case tunnel.Denied:
		return reply{status: http.StatusForbidden, text: "sockshaper: destination not allowed"}, true
	case tunnel.LimitReached:
		return reply{status: http.StatusTooManyRequests, text: "sockshaper: too many sessions of this user or address",
			fields: []Field{{"Retry-After", "1"}}}, true
	case tunnel.ProxyFull:
		return reply{status: http.StatusServiceUnavailable, text: "sockshaper: proxy full",
			fields: []Field{{"Retry-After", "1"}}}, true
	case tunnel.Unresolvable:
		return reply{status: http.StatusBadGateway, text: "sockshaper: destination name does not resolve"}, true
	case tunnel.HostUnreachable:
		return reply{status: http.StatusGatewayTimeout, text: "sockshaper: destination did not answer in time"}, true
	case tunnel.ConnRefused:
		return reply{status: http.StatusBadGateway, text: "sockshaper: destination refused the connection"}, true
	case tunnel.NetUnreachable:
		return reply{status: http.StatusBadGateway, text: "sockshaper: destination network unreachable"}, true
	}
	return reply{status: http.StatusBadGateway, text: "sockshaper: cannot reach the destination"}, true
}

// refuse answers a refusal of the core, which recorded it.
func (c *client) refuse(s *tunnel.Session, o tunnel.Outcome, req *Request) {
	r, ok := refusal(o)
	if !ok {
		c.closing = true
		return
	}
	c.send(r, req)
}

// send writes r, closing the connection after it when the request's body was
// not read, the client asked for it, or the server is draining.
func (c *client) send(r reply, req *Request) {
	if req == nil || req.HasBody() || req.Close || c.conn.Draining() {
		r.close = true
	}
	r.head = req != nil && req.Method == http.MethodHead
	if err := r.write(c.nc); err != nil || r.close {
		c.closing = true
	}
}

// badHead answers a head the front refused; the connection closes after it, as
// the client and the proxy may no longer agree on where a request starts.
func (c *client) badHead(s *tunnel.Session, err error) {
	s.Refuse(metrics.ResultProtocolError, "")
	s.Log().Info("bad request", "err", err)
	c.send(reply{status: statusOf(err), text: "sockshaper: " + err.Error(), close: true}, nil)
}

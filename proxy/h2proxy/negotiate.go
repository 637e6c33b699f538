package h2proxy

import (
	"context"
	"net/http"
	"time"

	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/httpproxy"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// ticketLogin is the identity a Negotiate token (RFC 4559) proved for the
// connection: Negotiate authenticates a connection, and an HTTP/2 connection
// is every stream of a browser, so streams that come without credentials are
// that user's until the ticket ends. Guarded by the connState's mu.
type ticketLogin struct {
	id    auth.Identity
	until time.Time // the ticket's end; zero: none
}

// negotiate checks a stream's Negotiate token with the core. On success the
// connection is the ticket's user's, and the mutual-authentication token goes
// on the stream's response (the 200 of a CONNECT); a refused token ends the
// connection's login, as a new exchange does on HTTP/1.1.
func (c *connState) negotiate(s *tunnel.Session, w http.ResponseWriter, v string) bool {
	token, _ := auth.NegotiateToken(v) // nil when malformed: the core says so
	cfg := s.Conn().Policy().Config
	ctx, cancel := context.WithDeadline(s.Context(), s.Start().Add(cfg.Timeouts.Handshake))
	out := s.LoginTicket(ctx, token, auth.SPNEGO)
	cancel()
	login := ticketLogin{}
	if out.OK() {
		login = ticketLogin{id: out.Identity, until: out.Ticket.Expires}
	}
	c.mu.Lock()
	c.sso = login
	c.mu.Unlock()
	if !out.OK() {
		loginRefused(s, w, httpproxy.TicketRefusal(out))
		return false
	}
	if out.Ticket.Reply != nil {
		w.Header().Set("Proxy-Authenticate", auth.NegotiateChallenge(out.Ticket.Reply))
	}
	return true
}

// ticketLogin returns the identity a ticket proved for the connection, for a
// stream without credentials (v empty), while the ticket lasts.
func (c *connState) ticketLogin(v string) (auth.Identity, bool) {
	if v != "" {
		return auth.Identity{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sso.until.IsZero() || !time.Now().Before(c.sso.until) {
		return auth.Identity{}, false
	}
	return c.sso.id, true
}

// loginRefused answers a refused login with status (see
// [httpproxy.LoginRefusal]): 407 with the challenges, 503 to try again later,
// or a reset when the client is gone.
func loginRefused(s *tunnel.Session, w http.ResponseWriter, status int) {
	switch status {
	case 0:
		s.Conn().Cut(tunnel.ReasonError) // the client left: the stream is reset
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
		reply(w, status, "sockshaper: cannot check logins now; try again")
	default:
		// An HTTP/2 connection is always over TLS: Basic may be offered.
		for _, v := range httpproxy.Challenges(s.Conn().Policy().Config, s.Conn().Policy().Authn, true) {
			w.Header().Add("Proxy-Authenticate", v)
		}
		reply(w, status, "sockshaper: proxy authentication required")
	}
}

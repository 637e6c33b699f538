package httpproxy

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// HTTP Negotiate (RFC 4559): a Kerberos ticket in Proxy-Authorization, checked
// locally with the service's key. Negotiate authenticates the connection, not
// the request: browsers send the token once, on the retry after a 407, and
// later requests on the same connection come without one (Chromium never sends
// a connection-based scheme's credentials preemptively). So a connection keeps
// the identity a ticket proved for its later requests until the ticket ends;
// a request that brings a token of its own is checked on its own, and a failed
// one ends the connection's login.

// negotiated is what a connection's Negotiate login leaves for its requests.
type negotiated struct {
	id    auth.Identity
	until time.Time // the ticket's end; zero: no login
	// reply is the Proxy-Authenticate value with the mutual-authentication
	// token, for the success response of the request that logged in.
	reply string
}

// valid reports whether the connection's login still stands at now.
func (n *negotiated) valid(now time.Time) bool { return !n.until.IsZero() && now.Before(n.until) }

// IsNegotiate reports whether a Proxy-Authorization value is of the Negotiate
// scheme, whatever its token.
func IsNegotiate(v string) bool {
	scheme, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	return strings.EqualFold(scheme, "Negotiate")
}

// PasswordsAllowed reports whether a client may send a password on a
// connection: over TLS, or anywhere when auth.require_tls is off.
func PasswordsAllowed(cfg *configs.Config, secure bool) bool { return secure || cfg.PasswordsInClear() }

// Challenges returns the Proxy-Authenticate values of a 407 from authn under
// cfg, on a connection over TLS or not: Negotiate when Kerberos is on, and
// Basic when passwords are checked and may be sent on the connection. A
// Negotiate token is offered on a plaintext listener even under
// auth.require_tls: it is no reusable password (one authenticator, in the
// replay cache once used, bound to the proxy's service) and tells a passive
// listener nothing to log in with.
func Challenges(cfg *configs.Config, authn *auth.Authenticator, secure bool) []string {
	var out []string
	if authn.Tickets() {
		out = append(out, auth.NegotiateChallenge(nil))
	}
	if authn.Passwords() && PasswordsAllowed(cfg, secure) {
		out = append(out, Challenge(cfg))
	}
	return out
}

// TicketRefusal returns the status of a Kerberos login the core refused: 503
// when it could not be checked (the directory did not answer, the replay cache
// is full: not the user's fault), 407 otherwise; 0 when the client is gone.
func TicketRefusal(out auth.TicketOutcome) int {
	if out.Result == auth.KerberosBusy.Attempt() {
		return http.StatusServiceUnavailable
	}
	return LoginRefusal(out.Result)
}

// negotiate checks a request's Negotiate token with the core and answers a
// refusal; on success the connection is the ticket's user's for its later
// requests, and the mutual-authentication token waits for the response.
func (c *client) negotiate(s *tunnel.Session, req *Request, v string) bool {
	c.sso = negotiated{}
	token, _ := auth.NegotiateToken(v) // nil when malformed: the core says so
	ctx, cancel := context.WithDeadline(c.conn.Context(), s.Start().Add(c.cfg.Timeouts.Handshake))
	out := s.LoginTicket(ctx, token, auth.SPNEGO)
	cancel()
	if out.OK() {
		c.sso = negotiated{id: out.Identity, until: out.Ticket.Expires}
		if out.Ticket.Reply != nil {
			c.sso.reply = auth.NegotiateChallenge(out.Ticket.Reply)
		}
		return true
	}
	c.loginRefused(TicketRefusal(out), req)
	return false
}

// loginRefused answers a login the core refused with status (see
// [LoginRefusal]).
func (c *client) loginRefused(status int, req *Request) {
	switch status {
	case 0:
		c.closing = true
	case http.StatusServiceUnavailable:
		// Not the user's fault: 407 would make a browser ask for the password
		// again, or drop the one it saved. 503 tells it to try again later.
		c.send(reply{status: http.StatusServiceUnavailable, text: "sockshaper: cannot check logins now; try again",
			fields: []Field{{"Retry-After", "5"}}}, req)
	default:
		c.send(c.challenge(), req)
	}
}

// established is the 200 of a CONNECT, with the mutual-authentication token
// of the login that came with it.
func (c *client) established() []byte {
	if c.sso.reply == "" {
		return []byte(established)
	}
	return c.withAuthReply([]byte(established))
}

// withAuthReply adds the mutual-authentication token of the request's login
// to a response head (which ends with its empty line), once.
func (c *client) withAuthReply(head []byte) []byte {
	if c.sso.reply == "" || len(head) < 2 {
		return head
	}
	out := make([]byte, 0, len(head)+len(c.sso.reply)+24)
	out = appendField(append(out, head[:len(head)-2]...), "Proxy-Authenticate", c.sso.reply)
	c.sso.reply = ""
	return append(out, "\r\n"...)
}

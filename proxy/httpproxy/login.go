package httpproxy

import (
	"context"
	"net/http"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// login checks the request's credentials with the core (the same
// authenticator, throttle, cache and timing as SOCKS5 logins) and answers a
// request it refuses: Proxy-Authorization: Basic, checked for every request
// (a connection is never trusted for a user an earlier request logged in as
// with a password), or Negotiate, a Kerberos ticket, which logs the
// connection in for its later requests (negotiate.go). It reports whether the
// request may go on. Without authentication configured, no credentials are
// needed and any sent are ignored.
func (c *client) login(s *tunnel.Session, req *Request) bool {
	authn := c.conn.Policy().Authn
	if authn == nil {
		return true
	}
	c.sso.reply = ""
	v, found := req.Get("Proxy-Authorization")
	switch {
	case found && authn.Tickets() && IsNegotiate(v):
		return c.negotiate(s, req, v)
	case !found && c.sso.valid(time.Now()):
		s.LoggedInWithTicket(c.sso.id)
		return true
	case !PasswordsAllowed(c.cfg, c.conn.Secure()) && (found || !authn.Tickets()):
		// auth.require_tls on a plaintext listener: a password is refused
		// before it is checked, and without Kerberos no challenge is sent
		// (a browser would answer it with the password, in the clear).
		c.requireTLS(s, req)
		return false
	}
	user, password, ok := basicCredentials(req)
	if !ok || !authn.Passwords() {
		// Browsers send their first request without credentials and retry
		// with them after the challenge: not a failed login, not counted.
		// Credentials sent but unreadable are a failed login.
		if Unreadable(v, found, authn.Passwords()) {
			s.Refuse(metrics.ResultAuthFailed, "auth_unreadable")
		} else {
			s.Challenged()
		}
		c.send(c.challenge(), req)
		return false
	}
	deadline := s.Start().Add(c.cfg.Timeouts.Handshake)
	ctx, cancel := context.WithDeadline(c.conn.Context(), deadline)
	out := s.Login(ctx, user, password)
	cancel()
	if out.Result == auth.ResultOK {
		return true
	}
	c.loginRefused(LoginRefusal(out.Result), req)
	return false
}

// challenge is the 407 that asks for credentials: Negotiate and Basic, as
// the connection may use them. Its body never comes from an origin: no
// request is forwarded before its login.
func (c *client) challenge() reply {
	text := "sockshaper: proxy authentication required"
	if !PasswordsAllowed(c.cfg, c.conn.Secure()) {
		text += " (Kerberos only on this port" + c.httpsHint() + ")"
	}
	r := reply{status: http.StatusProxyAuthRequired, text: text}
	for _, v := range Challenges(c.cfg, c.conn.Policy().Authn, c.conn.Secure()) {
		r.fields = append(r.fields, Field{"Proxy-Authenticate", v})
	}
	return r
}

// basicCredentials returns the user and password of a Proxy-Authorization:
// Basic field; ok is false when there is none or it is malformed.
func basicCredentials(req *Request) (user, password string, ok bool) {
	v, found := req.Get("Proxy-Authorization")
	if !found {
		return "", "", false
	}
	return ParseBasic(v)
}

// requireTLS refuses a request on a plaintext listener under auth.require_tls:
// 403, not 407, because a browser answers a 407 offering Basic with the
// password, in the clear; the text names the HTTPS proxy to use instead.
func (c *client) requireTLS(s *tunnel.Session, req *Request) {
	s.Refuse(metrics.ResultAuthFailed, "tls_required")
	text := "sockshaper: this proxy takes passwords over TLS only: use the HTTPS proxy" + c.httpsHint()
	c.send(reply{status: http.StatusForbidden, text: text}, req)
}

// httpsHint names the HTTPS proxy, " at https://host:port (PAC: HTTPS
// host:port)", or "" without one.
func (c *client) httpsHint() string {
	host := tunnel.AddrPortOf(c.nc.LocalAddr()).Addr().String()
	if addr := c.cfg.PublicHTTPS(host, c.conn.Core().HTTPSPort()); addr != "" {
		return " at https://" + addr + " (PAC: HTTPS " + addr + ")"
	}
	return ""
}

package httpproxy

import (
	"context"
	"net/http"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// login checks the request's Proxy-Authorization: Basic credentials with the
// core (the same authenticator, throttle, cache and timing as SOCKS5 logins) and
// answers a request it refuses. Every request carries its own credentials: a
// connection is never trusted for a user an earlier request logged in as. It
// reports whether the request may go on. Without authentication configured, no
// credentials are needed and any sent are ignored.
func (c *client) login(s *tunnel.Session, req *Request) bool {
	if c.conn.Policy().Authn == nil {
		return true
	}
	if !c.conn.Secure() && !c.cfg.PasswordsInClear() {
		c.requireTLS(s, req)
		return false
	}
	user, password, ok := basicCredentials(req)
	if !ok {
		// Browsers send their first request without credentials and retry
		// with them after the challenge: not a failed login, not counted.
		s.Refuse(metrics.ResultAuthFailed, "auth_required")
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
	switch out.Result {
	case auth.ResultAbandoned:
		c.closing = true
	case auth.ResultBusy, auth.ResultUnavailable:
		// Not the user's fault: 407 would make a browser ask for the password
		// again, or drop the one it saved. 503 tells it to try again later.
		c.send(reply{status: http.StatusServiceUnavailable, text: "sockshaper: cannot check logins now; try again",
			fields: []Field{{"Retry-After", "5"}}}, req)
	default:
		c.send(c.challenge(), req)
	}
	return false
}

// challenge is the 407 that asks for credentials. Its body never comes from an
// origin: no request is forwarded before its login.
func (c *client) challenge() reply {
	return reply{status: http.StatusProxyAuthRequired, text: "sockshaper: proxy authentication required",
		fields: []Field{{"Proxy-Authenticate", Challenge(c.cfg)}}}
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
// 403, not 407, because a browser answers a 407 with the password, in the
// clear; the text names the HTTPS proxy to use instead.
func (c *client) requireTLS(s *tunnel.Session, req *Request) {
	s.Refuse(metrics.ResultAuthFailed, "tls_required")
	host := tunnel.AddrPortOf(c.nc.LocalAddr()).Addr().String()
	text := "sockshaper: this proxy takes passwords over TLS only: use the HTTPS proxy"
	if addr := c.cfg.PublicHTTPS(host, c.conn.Core().HTTPSPort()); addr != "" {
		text += " at https://" + addr + " (PAC: HTTPS " + addr + ")"
	}
	c.send(reply{status: http.StatusForbidden, text: text}, req)
}

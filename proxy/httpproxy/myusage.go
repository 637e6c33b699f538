package httpproxy

import (
	"context"
	"net/http"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/mypage"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// LocalReply is an answer of the proxy itself, for any HTTP front to write:
// a status, fields, and a body (text/plain when Fields name no type).
type LocalReply struct {
	Status int
	Fields []Field
	Body   []byte
}

// MyUsage answers GET /my-usage, the logged-in user's own page, on the
// session s (its request read, for the proxy itself). The login is the
// proxy's, with the request's Authorization field (this is no proxy request,
// so 401 and WWW-Authenticate, not 407): the same users, throttle and timing;
// under auth.require_tls a plaintext listener takes no password for it. The
// page shows the user that logged in and no one else; no user name comes from
// the URL. The session is counted as a local request (command none), never as
// one with bytes.
func MyUsage(s *tunnel.Session, authorization string) LocalReply {
	conn := s.Conn()
	cfg, authn := conn.Policy().Config, conn.Policy().Authn
	if authn == nil || !authn.Passwords() {
		s.Refuse(metrics.ResultCommandRefused, "no_logins")
		return textReply(http.StatusNotFound, "sockshaper: /my-usage needs password logins (auth.users_file or auth.ldap)")
	}
	if !PasswordsAllowed(cfg, conn.Secure()) {
		s.Refuse(metrics.ResultAuthFailed, "tls_required")
		return textReply(http.StatusForbidden, "sockshaper: this proxy takes passwords over TLS only: open "+
			myUsageHTTPS(conn)+mypage.Path)
	}
	user, password, ok := ParseBasic(authorization)
	if !ok {
		if Unreadable(authorization, authorization != "", true) {
			s.Refuse(metrics.ResultAuthFailed, "auth_unreadable")
		} else {
			s.Challenged()
		}
		return unauthorized(cfg.HTTP.Realm)
	}
	ctx, cancel := context.WithDeadline(s.Context(), s.Start().Add(cfg.Timeouts.Handshake))
	out := s.Login(ctx, user, password)
	cancel()
	switch {
	case out.Result == auth.ResultBusy || out.Result == auth.ResultUnavailable:
		return textReply(http.StatusServiceUnavailable, "sockshaper: logins cannot be checked now; try again")
	case out.Result != auth.ResultOK:
		return unauthorized(cfg.HTTP.Realm)
	}
	s.Refuse(metrics.ResultOK, "my_usage")
	body, err := mypage.Render(mypage.Collect(s.Core().Usage(), s.Core().Shaper(), s.Who(), time.Now()))
	if err != nil {
		s.Log().Error("my-usage page", "err", err)
		return textReply(http.StatusInternalServerError, "sockshaper: the page could not be made")
	}
	r := LocalReply{Status: http.StatusOK, Body: body}
	for _, h := range mypage.Headers() {
		r.Fields = append(r.Fields, Field{h[0], h[1]})
	}
	return r
}

// unauthorized is the 401 that asks a browser for the proxy's login.
func unauthorized(realm string) LocalReply {
	r := textReply(http.StatusUnauthorized, "sockshaper: log in with your proxy user name and password")
	r.Fields = append(r.Fields, Field{"WWW-Authenticate", `Basic realm="` + realm + `", charset="UTF-8"`})
	return r
}

func textReply(status int, text string) LocalReply {
	return LocalReply{Status: status, Body: []byte(text + "\n"),
		Fields: []Field{{"Content-Type", "text/plain; charset=utf-8"}, {"Cache-Control", "no-store"}}}
}

// myUsageHTTPS is the https:// origin of the proxy's TLS listener, as a
// client of conn reaches it, or "the HTTPS proxy" when it has none.
func myUsageHTTPS(conn *tunnel.Conn) string {
	host := tunnel.AddrPortOf(conn.Net().LocalAddr()).Addr().String()
	if addr := conn.Policy().Config.PublicHTTPS(host, conn.Core().HTTPSPort()); addr != "" {
		return "https://" + addr
	}
	return "the HTTPS proxy's "
}

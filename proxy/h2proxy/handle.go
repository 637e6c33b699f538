package h2proxy

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/httpproxy"
	"github.com/sockshaper/sockshaper/proxy/mypage"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// ServeHTTP serves one stream: a CONNECT tunnel, a request for another origin
// forwarded to it, or a request for the proxy itself (its PAC file). The
// stream is a connection of its own for the core (tunnel.Conn.NewStream): its
// own session, budget slot, cut and accounting line. The handler returns only
// once the stream has ended, with RST_STREAM when it was cut.
func (c *connState) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.begin()
	defer c.end()
	st := newStream(w, r, c.conn.Net())
	sc := c.conn.NewStream(st)
	defer c.finish(sc, st)
	defer sc.Core().Recover(sc)
	s := sc.NewSession(metrics.FrontHTTP2)
	sc.Net().SetDeadline(sc.Start().Add(sc.Policy().Config.Timeouts.Handshake))
	switch {
	case r.Method == http.MethodConnect:
		c.connect(s, w, r)
	case c.forProxy(r):
		c.local(s, w, r)
	default:
		c.forward(s, w, r)
	}
}

// forProxy reports whether a request is for the proxy itself rather than one
// to forward: HTTP/2 gives a handler no :scheme, but a request for the proxy
// names it in its :authority, by the name the client's TLS handshake named
// (SNI), http.pac.proxy_host or the address it connected to, and the port it
// connected to (443 when it names none).
func (c *connState) forProxy(r *http.Request) bool {
	host, port := r.Host, "443"
	if h, p, err := net.SplitHostPort(host); err == nil {
		host, port = h, p
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return true
	}
	local := tunnel.AddrPortOf(c.conn.Net().LocalAddr())
	if port != strconv.Itoa(int(local.Port())) {
		return false
	}
	pacHost, _ := c.conn.Policy().Config.HTTP.PAC.ProxyHostPort()
	return r.TLS != nil && strings.EqualFold(host, r.TLS.ServerName) || strings.EqualFold(host, pacHost) ||
		host == local.Addr().String()
}

// finish ends the stream unless a relay took it over, waits until it has
// ended, and resets it when it was cut (net/http's way: the handler panics
// with ErrAbortHandler, which the server turns into RST_STREAM).
func (c *connState) finish(sc *tunnel.Conn, st *stream) {
	if !sc.Detached() {
		sc.End()
	}
	if st.wait() {
		panic(http.ErrAbortHandler)
	}
}

// connect serves a CONNECT stream through the core, as the HTTP/1.1 front
// serves CONNECT: its login, http.connect_ports, then the core's admission,
// dial and relay; 200 and the tunnel on success, the refusal's status
// otherwise.
func (c *connState) connect(s *tunnel.Session, w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(":protocol") != "" {
		s.Refuse(metrics.ResultCommandRefused, "extended_connect")
		reply(w, http.StatusNotImplemented, "sockshaper: extended CONNECT is not supported")
		return
	}
	req, err := httpproxy.Authority(r.Host, true)
	if err != nil {
		s.Refuse(metrics.ResultProtocolError, "")
		reply(w, http.StatusBadRequest, "sockshaper: "+err.Error())
		return
	}
	req.Command = metrics.CommandConnect
	s.Read(req)
	if !c.login(s, w, r) || !portAllowed(s, w, req) {
		return
	}
	rc := http.NewResponseController(w)
	s.Connect(req, func(o tunnel.Outcome, _ netip.AddrPort) ([]byte, error) {
		if !o.OK() {
			refuse(w, o)
			return nil, nil
		}
		w.WriteHeader(http.StatusOK)
		return nil, rc.Flush()
	})
}

// portAllowed applies http.connect_ports, answering 403 when it refuses.
func portAllowed(s *tunnel.Session, w http.ResponseWriter, req tunnel.Request) bool {
	if s.Conn().Policy().Config.HTTP.ConnectPortAllowed(req.Target.Port) {
		return true
	}
	s.PortDenied()
	reply(w, http.StatusForbidden, "sockshaper: this port is not allowed (http.connect_ports)")
	return false
}

// login checks the stream's credentials with the core: Negotiate, a Kerberos
// ticket, which logs the whole connection in (negotiate.go), so that streams
// without credentials are then its user's; or Basic, unless they are the
// ones the connection verified last, less than auth.cache_ttl ago (then the
// stream is that identity's, with no check: a browser sends the same
// credentials on every stream). Other credentials are checked on their own.
func (c *connState) login(s *tunnel.Session, w http.ResponseWriter, r *http.Request) bool {
	cfg, authn := s.Conn().Policy().Config, s.Conn().Policy().Authn
	if authn == nil {
		return true
	}
	v := r.Header.Get("Proxy-Authorization")
	if v != "" && authn.Tickets() && httpproxy.IsNegotiate(v) {
		return c.negotiate(s, w, v)
	}
	if id, ok := c.ticketLogin(v); ok {
		s.LoggedInWithTicket(id)
		return true
	}
	if id, ok := c.verified(v, cfg.Auth.CacheTTL); ok {
		s.LoggedIn(id)
		return true
	}
	user, password, ok := httpproxy.ParseBasic(v)
	if !ok || !authn.Passwords() {
		if httpproxy.Unreadable(v, v != "", authn.Passwords()) {
			s.Refuse(metrics.ResultAuthFailed, "auth_unreadable")
		} else {
			s.Challenged()
		}
		loginRefused(s, w, http.StatusProxyAuthRequired)
		return false
	}
	ctx, cancel := context.WithDeadline(s.Context(), s.Start().Add(cfg.Timeouts.Handshake))
	out := s.Login(ctx, user, password)
	cancel()
	if out.Result == auth.ResultOK {
		c.remember(v, out.Identity)
		return true
	}
	loginRefused(s, w, httpproxy.LoginRefusal(out.Result))
	return false
}

// verified returns the identity the connection verified for credentials v,
// when it did less than ttl ago.
func (c *connState) verified(v string, ttl time.Duration) (auth.Identity, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == "" || v != c.cred || time.Since(c.loginAt) >= ttl {
		return auth.Identity{}, false
	}
	return c.id, true
}

func (c *connState) remember(v string, id auth.Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cred, c.id, c.loginAt = v, id, time.Now()
}

// local answers a request for the proxy itself: its PAC file (/proxy.pac,
// /wpad.dat), which needs no login, the user's own page (/my-usage) behind
// it, and 404 for anything else.
func (c *connState) local(s *tunnel.Session, w http.ResponseWriter, r *http.Request) {
	s.Read(tunnel.Request{Command: metrics.CommandNone, Requested: r.URL.Path})
	switch {
	case r.URL.Path == mypage.Path && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		lr := httpproxy.MyUsage(s, r.Header.Get("Authorization"))
		for _, f := range lr.Fields {
			w.Header().Set(f.Name, f.Value)
		}
		w.WriteHeader(lr.Status)
		if r.Method == http.MethodGet {
			w.Write(lr.Body)
		}
	case r.URL.Path != "/proxy.pac" && r.URL.Path != "/wpad.dat":
		s.Refuse(metrics.ResultCommandRefused, "not_found")
		reply(w, http.StatusNotFound, "sockshaper: this is a proxy; its PAC file is /proxy.pac")
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		s.Refuse(metrics.ResultCommandRefused, "method_not_allowed")
		w.Header().Set("Allow", "GET, HEAD")
		reply(w, http.StatusMethodNotAllowed, "sockshaper: GET the PAC file")
	default:
		s.Refuse(metrics.ResultOK, "pac")
		w.Header().Set("Content-Type", "application/x-ns-proxy-autoconfig")
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Add("Vary", "Host")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			w.Write(httpproxy.PACFile(c.conn, r.Host))
		}
	}
}

// refuse answers a refusal of the core, which recorded it.
func refuse(w http.ResponseWriter, o tunnel.Outcome) {
	status, text, retry, ok := httpproxy.Refusal(o)
	if !ok {
		return
	}
	if retry {
		w.Header().Set("Retry-After", "1")
	}
	reply(w, status, text)
}

// reply writes a response the proxy makes itself.
func reply(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	w.Write([]byte(text + "\n"))
}

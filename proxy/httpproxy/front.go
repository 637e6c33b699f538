// Package httpproxy is sockshaper's HTTP proxy front, for the clients that
// cannot speak SOCKS5 with credentials: Chromium browsers, Windows' and macOS'
// system proxy settings, Teams (which follows them or a PAC file). It serves
// CONNECT tunnels through the core's dial and relay, forwards absolute-URI
// requests (any method, bodies of known length and chunked, keep-alive with one
// session per request) through the core's dial and shaped copy, checks
// Proxy-Authorization: Basic with the same authenticator as the SOCKS5 front,
// and serves a proxy auto-config file (/proxy.pac, /wpad.dat) generated from the
// config. Request heads are parsed by its own strict parser ([ParseRequest]),
// which refuses the forms used to smuggle requests past another parser;
// responses from origins are read with net/http.
package httpproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/mypage"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// Front serves HTTP proxy connections. It holds nothing of its own; it is safe
// for concurrent use.
type Front struct{}

// client is one HTTP client connection as the front serves it.
type client struct {
	conn    *tunnel.Conn
	nc      net.Conn
	cfg     *configs.Config
	src     *bufio.Reader // the server's reader, holding what it peeked
	br      *bufio.Reader // reads heads and bodies through src; nil while idle
	up      *upstream     // the origin connection of the last request, for reuse
	closing bool          // no further request: the connection ends after this one
	front   string        // the metrics front: http, or https over TLS
	sso     negotiated    // the connection's Kerberos login (negotiate.go)
}

// Serve serves one connection whose handshake deadline is set, reading it
// through br (whose first byte the server has peeked): requests until the
// client closes, a request asks to close, the keep-alive wait passes, or a
// CONNECT hands the connection to the relay. The connection is left to the
// caller to end, unless a relay took it over (conn.Detached).
func (Front) Serve(conn *tunnel.Conn, br *bufio.Reader) {
	c := &client{conn: conn, nc: conn.Net(), cfg: conn.Policy().Config, src: br}
	c.br = getReader(br)
	defer func() {
		if c.br != nil {
			putReader(c.br)
		}
		c.up.close(conn)
	}()
	c.front = metrics.FrontHTTP
	if conn.Secure() {
		c.front = metrics.FrontHTTPS
	}
	s := conn.NewSession(c.front)
	for {
		req, err := readHead(c.br)
		if err != nil {
			c.headFailed(s, err)
			return
		}
		c.serveRequest(s, req)
		if c.closing || conn.Detached() {
			return
		}
		s.End()
		if s = c.next(); s == nil {
			return
		}
	}
}

// headFailed answers a head that could not be read: a refused one gets its
// status, a connection that closed or timed out nothing.
func (c *client) headFailed(s *tunnel.Session, err error) {
	var he *headError
	if errors.As(err, &he) {
		c.badHead(s, err)
		return
	}
	level := slog.LevelInfo
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || c.conn.Evicted() {
		level = slog.LevelDebug
	}
	if tunnel.IsTimeout(err) {
		s.Closing(tunnel.ReasonTimeout)
	}
	s.Log().Log(context.Background(), level, "request head not read", "err", err)
}

// next waits, holding no head buffer and no session slot (see
// [tunnel.Conn.SetIdle]), for the first byte of the connection's next request,
// for at most http.keepalive, and starts its session. It returns nil when the
// connection should end: the client closed it or stayed idle, it was evicted,
// or the server is draining.
func (c *client) next() *tunnel.Session {
	if c.br.Buffered() == 0 {
		putReader(c.br)
		c.br = nil
	}
	if !c.conn.SetIdle(true) {
		return nil
	}
	c.nc.SetReadDeadline(time.Now().Add(c.cfg.HTTP.KeepAlive))
	var err error
	if c.br == nil {
		_, err = c.src.Peek(1)
	}
	if !c.conn.SetIdle(false) || err != nil {
		return nil
	}
	if c.br == nil {
		c.br = getReader(c.src)
	}
	s := c.conn.NewSession(c.front)
	c.nc.SetDeadline(time.Now().Add(c.cfg.Timeouts.Handshake))
	return s
}

// serveRequest serves one request whose head was read: a request to the proxy
// itself (the PAC file), or a proxied one after its login.
func (c *client) serveRequest(s *tunnel.Session, req *Request) {
	f, d, err := parseTarget(req.Method, req.Target)
	if err != nil {
		c.badHead(s, err)
		return
	}
	if f == originForm {
		c.serveLocal(s, req, d.path)
		return
	}
	r := tunnel.Request{Command: metrics.CommandRequest, Target: d.target, Requested: d.hostPort()}
	if f == authorityForm {
		r.Command = metrics.CommandConnect
	}
	s.Read(r)
	// Until the core admits it (after its login), the request holds nothing but
	// the connection's handshake slot, however many requests the connection
	// sends without credentials (and it gives its session slot back while it
	// idles).
	if !c.login(s, req) || !c.portAllowed(s, req, d) {
		return
	}
	if f == authorityForm {
		c.connect(s, req, r)
		return
	}
	c.forward(s, req, r, d)
}

// serveLocal answers a request in origin form, which is for the proxy itself:
// the PAC file, under /proxy.pac and WPAD's /wpad.dat, without a login, and
// the user's own page, /my-usage, behind it (MyUsage).
func (c *client) serveLocal(s *tunnel.Session, req *Request, path string) {
	s.Read(tunnel.Request{Command: metrics.CommandNone, Requested: path})
	if p, _, _ := strings.Cut(path, "?"); p == mypage.Path && (req.Method == http.MethodGet || req.Method == http.MethodHead) {
		auth, _ := req.Get("Authorization")
		r := MyUsage(s, auth)
		c.send(reply{status: r.Status, body: r.Body, fields: r.Fields}, req)
		return
	}
	if p, _, _ := strings.Cut(path, "?"); p != "/proxy.pac" && p != "/wpad.dat" {
		s.Refuse(metrics.ResultCommandRefused, "not_found")
		c.send(reply{status: http.StatusNotFound, text: "sockshaper: this is a proxy; its PAC file is /proxy.pac"}, req)
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		s.Refuse(metrics.ResultCommandRefused, "method_not_allowed")
		c.send(reply{status: http.StatusMethodNotAllowed, text: "sockshaper: GET the PAC file",
			fields: []Field{{"Allow", "GET, HEAD"}}}, req)
		return
	}
	s.Refuse(metrics.ResultOK, "pac")
	fields := []Field{{"Content-Type", "application/x-ns-proxy-autoconfig"}, {"Cache-Control", "max-age=300"}}
	if pacVaries(c.cfg) {
		fields = append(fields, Field{"Vary", "Host"})
	}
	c.send(reply{status: http.StatusOK, body: c.pac(req), fields: fields}, req)
}

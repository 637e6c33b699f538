package h2proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/httpproxy"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// maxInterim bounds the interim (1xx) responses an origin may send before its
// final one, as the HTTP/1.1 front does; they are not passed on.
const maxInterim = 16

var errTooManyInterims = fmt.Errorf("origin sent more than %d interim (1xx) responses", maxInterim)

// bufPool holds the buffers a response body is copied to the client through.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// forward serves a request with an http:// URI: its login and
// http.connect_ports, the core's admission and dial, the request to the origin
// over HTTP/1.1 in origin form (net/http writes its framing) without
// hop-by-hop fields, and the response back on the stream; both ways through
// the session's buckets and counters. Every request gets its own connection to
// its origin.
func (c *connState) forward(s *tunnel.Session, w http.ResponseWriter, r *http.Request) {
	req, err := httpproxy.Authority(r.Host, false)
	if err != nil {
		s.Refuse(metrics.ResultProtocolError, "")
		reply(w, http.StatusBadRequest, "sockshaper: "+err.Error())
		return
	}
	req.Command = metrics.CommandRequest
	s.Read(req)
	if !c.login(s, w, r) || !portAllowed(s, w, req) {
		return
	}
	o := s.Admit()
	var dst net.Conn
	if o.OK() {
		dst, o = s.Dial(req.Target)
	}
	if !o.OK() {
		refuse(w, o)
		return
	}
	s.Established()
	s.Open()
	up, down := s.Meter(metrics.DirectionUpload), s.Meter(metrics.DirectionDownload)
	defer up.Close()
	defer down.Close()
	idle := s.Conn().Policy().Config.Timeouts.Idle
	origin := &idleConn{Conn: dst, idle: idle}
	resp, err := roundTrip(r, up.Writer(origin), bufio.NewReader(down.Reader(origin)))
	if err != nil {
		s.Closing(tunnel.ReasonError)
		s.Log().Info("forward failed", "destination", s.Requested(), "err", err)
		status, text := http.StatusBadGateway, "sockshaper: the origin failed to answer"
		if tunnel.IsTimeout(err) {
			status, text = http.StatusGatewayTimeout, "sockshaper: the origin did not answer in time"
		}
		reply(w, status, text)
		return
	}
	defer resp.Body.Close()
	respond(s, w, resp)
}

// roundTrip writes r to the origin in origin form and reads the head of its
// final response.
func roundTrip(r *http.Request, to io.Writer, from *bufio.Reader) (*http.Response, error) {
	out := &http.Request{
		Method:        r.Method,
		URL:           &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:          r.Host,
		Header:        forwardable(r.Header),
		Body:          r.Body,
		ContentLength: r.ContentLength,
		Proto:         "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	out.Header.Set("Via", httpproxy.Via)
	if _, ok := r.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = []string{""} // net/http would add its own
	}
	bw := bufio.NewWriterSize(to, 16<<10)
	if err := out.Write(bw); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	for interim := 0; ; interim++ {
		resp, err := http.ReadResponse(from, out)
		switch {
		case err != nil:
			return nil, fmt.Errorf("response: %w", err)
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("origin switched protocols, which the proxy did not ask for")
		case resp.StatusCode >= 200:
			return resp, nil
		case interim >= maxInterim:
			return nil, errTooManyInterims
		}
	}
}

// respond sends the origin's response on the stream: its fields less the
// hop-by-hop ones, Via, then its body, flushed as it comes.
func respond(s *tunnel.Session, w http.ResponseWriter, resp *http.Response) {
	h := w.Header()
	listed := connectionListed(resp.Header)
	for name, values := range resp.Header {
		if !httpproxy.HopByHop(name, listed) {
			h[name] = values
		}
	}
	h.Set("Via", httpproxy.Via)
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", fmt.Sprint(resp.ContentLength))
	}
	w.WriteHeader(resp.StatusCode)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	if _, err := io.CopyBuffer(flusher{w: w, rc: http.NewResponseController(w)}, onlyReader{resp.Body}, *bp); err != nil {
		s.Closing(tunnel.ReasonError)
		s.Log().Info("response cut short", "destination", s.Requested(), "err", err)
		s.Conn().Cut(tunnel.ReasonError) // the client must not take it for whole
	}
}

// connectionListed returns the field names a Connection field lists, lower
// case.
func connectionListed(h http.Header) []string {
	var out []string
	for _, v := range h.Values("Connection") {
		for _, name := range httpSplit(v) {
			out = append(out, name)
		}
	}
	return out
}

// forwardable returns the request's fields less the hop-by-hop ones.
func forwardable(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for name, values := range in {
		if !httpproxy.HopByHop(name, nil) && name != "Host" {
			out[name] = values
		}
	}
	return out
}

// flusher writes to the stream and flushes each write as DATA frames.
type flusher struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (f flusher) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// onlyReader hides a reader's WriteTo, so that io.CopyBuffer uses the buffer.
type onlyReader struct{ io.Reader }

// idleConn sets a connection's deadline timeouts.idle ahead before each read
// and write, at most once a second, so that a transfer ends only when nothing
// moved for that long.
type idleConn struct {
	net.Conn
	idle     time.Duration
	rAt, wAt time.Time
}

func (c *idleConn) Read(p []byte) (int, error) {
	if now := time.Now(); now.Sub(c.rAt) >= time.Second {
		c.rAt = now
		c.Conn.SetReadDeadline(now.Add(c.idle))
	}
	return c.Conn.Read(p)
}

func (c *idleConn) Write(p []byte) (int, error) {
	if now := time.Now(); now.Sub(c.wAt) >= time.Second {
		c.wAt = now
		c.Conn.SetWriteDeadline(now.Add(c.idle))
	}
	return c.Conn.Write(p)
}

// httpSplit splits a comma-separated field value into its lower-case,
// trimmed elements.
func httpSplit(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		if p := strings.ToLower(strings.TrimSpace(part)); p != "" {
			out = append(out, p)
		}
	}
	return out
}

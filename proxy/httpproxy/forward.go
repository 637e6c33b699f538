package httpproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

const continue100 = "HTTP/1.1 100 Continue\r\n\r\n"

// maxInterim bounds the interim (1xx) responses an origin may send before its
// final one: real origins send one or two (100 Continue, 103 Early Hints), and
// an origin that streams them without end would otherwise hold a core and the
// client's connection for as long as it likes.
const maxInterim = 16

var (
	errUpgrade         = errors.New("origin switched protocols, which the proxy did not ask for")
	errNoAnswer        = errors.New("origin closed the connection without a byte of answer")
	errTooManyInterims = fmt.Errorf("origin sent more than %d interim (1xx) responses", maxInterim)
)

// forward serves a request with an absolute URI: the core's dial (or the
// connection the last request to the same origin used), the request in origin
// form with its body, and the response with its body, both through the user's
// buckets, as a session of its own.
func (c *client) forward(s *tunnel.Session, req *Request, r tunnel.Request, d destination) {
	if v, ok := req.Get("Expect"); ok && !strings.EqualFold(v, "100-continue") {
		s.Refuse(metrics.ResultProtocolError, "expectation_failed")
		c.send(reply{status: http.StatusExpectationFailed, text: "sockshaper: unsupported expectation"}, req)
		return
	}
	o := s.Admit()
	var up *upstream
	var reused bool
	if o.OK() {
		up, reused, o = c.upstreamFor(s, d)
	}
	if !o.OK() {
		c.refuse(s, o, req)
		return
	}
	s.Established()
	s.Open()
	resp, listed, err := c.roundTrip(s, req, d, up)
	if err != nil && reused && !req.HasBody() && closedBeforeAnswer(err) {
		// The origin closed the kept connection as the request went out (it
		// sent nothing): once more on a new one.
		c.up.close(c.conn)
		c.up = nil
		if up, _, o = c.upstreamFor(s, d); o.OK() {
			resp, listed, err = c.roundTrip(s, req, d, up)
		} else {
			err = o.Err
		}
	}
	var ce *clientError
	switch {
	case errors.As(err, &ce):
		c.clientFailed(s, ce.err)
	case err != nil:
		c.originFailed(s, err)
	default:
		c.relayResponse(s, req, resp, listed)
	}
}

// clientError is an error reading a request body from the client.
type clientError struct{ err error }

func (e *clientError) Error() string { return "request body: " + e.err.Error() }

// clientReader tells the client's errors from the origin's in a copy.
type clientReader struct{ r io.Reader }

func (c clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = &clientError{err}
	}
	return n, err
}

// clientFailed ends a request whose body the client did not send whole: a
// malformed chunked body gets 400, a client that left or stalled nothing.
func (c *client) clientFailed(s *tunnel.Session, err error) {
	s.Refuse(metrics.ResultProtocolError, "")
	c.up.close(c.conn)
	c.up = nil
	c.closing = true
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
		s.Closing(tunnel.ReasonError)
		return
	}
	s.Log().Info("bad request body", "err", err)
	c.send(reply{status: http.StatusBadRequest, text: "sockshaper: malformed request body", close: true}, nil)
}

// closedBeforeAnswer reports whether err says a kept origin connection was
// closed before the response began: nothing came back, or the request could
// not be written.
func closedBeforeAnswer(err error) bool {
	return errors.Is(err, errNoAnswer) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// originFailed answers a request whose origin failed before its response began
// (504 for a timeout, 502 otherwise) and ends the connection: the client's body
// may be partly unread.
func (c *client) originFailed(s *tunnel.Session, err error) {
	s.Closing(tunnel.ReasonError)
	s.Log().Info("forward failed", "destination", s.Requested(), "err", err)
	c.up.close(c.conn)
	c.up = nil
	r := reply{status: http.StatusBadGateway, text: "sockshaper: the origin failed to answer", close: true}
	if tunnel.IsTimeout(err) {
		r = reply{status: http.StatusGatewayTimeout, text: "sockshaper: the origin did not answer in time", close: true}
	}
	c.send(r, nil)
}

// roundTrip sends the request head and body to the origin and reads the head of
// its final response, passing interim (1xx) responses on to HTTP/1.1 clients.
func (c *client) roundTrip(s *tunnel.Session, req *Request, d destination, up *upstream) (*http.Response, []string, error) {
	idle := c.cfg.Timeouts.Idle
	w := &timed{conn: up.conn, idle: idle}
	xff := ""
	if c.cfg.HTTP.ForwardedFor {
		xff = c.conn.Peer().Addr().String()
	}
	if _, err := s.Copy(w, bytes.NewReader(requestHead(req, d, xff)), metrics.DirectionUpload); err != nil {
		return nil, nil, err
	}
	if req.HasBody() {
		if err := c.sendBody(s, req, w); err != nil {
			c.closing = true
			return nil, nil, err
		}
	}
	up.tee.start()
	for interim := 0; ; interim++ {
		up.conn.SetReadDeadline(time.Now().Add(idle))
		up.limitHead()
		resp, err := http.ReadResponse(up.br, &http.Request{Method: req.Method})
		up.unlimit()
		switch {
		case err != nil && len(up.tee.buf) == 0 && (errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
			return nil, nil, fmt.Errorf("%w: %w", errNoAnswer, err)
		case err != nil:
			return nil, nil, err
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, nil, errUpgrade
		case resp.StatusCode >= 200:
			return resp, up.tee.connectionFields(interim), nil
		case interim >= maxInterim:
			return nil, nil, errTooManyInterims
		}
		// An HTTP/1.0 client cannot take an interim response; its bytes count
		// in the session, and pass its buckets, all the same.
		var w io.Writer = io.Discard
		if req.Minor == 1 {
			w = &timed{conn: c.nc, idle: idle}
		}
		if _, err := s.Copy(w, bytes.NewReader(responseHead(resp, -2, false, nil)), metrics.DirectionDownload); err != nil {
			return nil, nil, &clientError{err}
		}
	}
}

// sendBody copies the request's body from the client to the origin, re-framed
// as the head said (chunks are decoded and encoded again, so the origin sees
// only well-formed chunks). A client that expects 100-continue gets it from the
// proxy first, which sends no Expect on.
func (c *client) sendBody(s *tunnel.Session, req *Request, up io.Writer) error {
	idle := c.cfg.Timeouts.Idle
	if v, _ := req.Get("Expect"); v != "" && req.Minor == 1 {
		w := &timed{conn: c.nc, idle: idle}
		if _, err := w.Write([]byte(continue100)); err != nil {
			return &clientError{err}
		}
	}
	if req.Chunked {
		// The chunked reader reads c.br itself, so that it never takes bytes of
		// the next request; the deadline is refreshed before each of its reads.
		body := &timed{conn: c.nc, r: clientReader{httputil.NewChunkedReader(c.br)}, idle: idle}
		if _, err := s.Copy(chunkWriter{up}, body, metrics.DirectionUpload); err != nil {
			return err
		}
		if err := skipTrailer(c.br); err != nil {
			return &clientError{err}
		}
		_, err := up.Write([]byte("0\r\n\r\n"))
		return err
	}
	body := &timed{conn: c.nc, r: clientReader{io.LimitReader(c.br, req.ContentLength)}, idle: idle}
	n, err := s.Copy(up, body, metrics.DirectionUpload)
	if err == nil && n < req.ContentLength {
		err = &clientError{io.ErrUnexpectedEOF}
	}
	return err
}

// relayResponse sends the origin's response to the client: its head (with the
// body in the same write when the reader already holds all of it), then its
// body through the user's download buckets, framed by its length, else chunked
// for an HTTP/1.1 client, else up to the close of the connection. A body cut
// short ends the connection without its end (no last chunk, a short length), so
// the client sees the truncation.
//
// The body is closed only once read to its end: net/http's Close would read
// the rest, and a body cut short is abandoned with its origin connection, whose
// reader goes back to its pool.
func (c *client) relayResponse(s *tunnel.Session, req *Request, resp *http.Response, listed []string) {
	noBody := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified
	length := resp.ContentLength
	switch {
	case noBody && req.Method != http.MethodHead, noBody && length < 0:
		length = -2
	case noBody, length >= 0:
	case req.Minor == 1:
		length = -1
	default:
		length, c.closing = -2, true // until the close
	}
	c.closing = c.closing || req.Close || c.conn.Draining()
	w := &timed{conn: c.nc, idle: c.cfg.Timeouts.Idle}
	head := c.withAuthReply(responseHead(resp, length, c.closing, listed))
	whole := false // the body goes out with the head
	var err error
	if !noBody {
		head, whole, err = c.appendBufferedBody(head, resp, length)
	}
	if err == nil {
		_, err = s.Copy(w, bytes.NewReader(head), metrics.DirectionDownload)
	}
	if err != nil {
		c.cut(s, err)
		return
	}
	if !noBody && !whole {
		if err := c.copyBody(s, resp, w, length); err != nil {
			c.cut(s, err)
			return
		}
	}
	resp.Body.Close()
	if resp.Close || !noBody && resp.ContentLength < 0 && len(resp.TransferEncoding) == 0 {
		c.up.close(c.conn)
		c.up = nil
	}
}

// appendBufferedBody appends the response's body to its head when the body
// has a length and the origin connection's reader already holds all of it (a
// small answer that came in the head's read), so that the client gets head and
// body in one write and one wakeup. It reports whether it did; it reads nothing
// from the origin connection itself.
func (c *client) appendBufferedBody(head []byte, resp *http.Response, length int64) ([]byte, bool, error) {
	if length < 0 || length > int64(c.up.br.Buffered()) {
		return head, false, nil
	}
	n := len(head)
	head = slices.Grow(head, int(length))[:n+int(length)]
	if _, err := io.ReadFull(resp.Body, head[n:]); err != nil {
		return nil, false, fmt.Errorf("buffered response body: %w", err)
	}
	return head, true, nil
}

// copyBody copies the response body, chunked when length is -1.
func (c *client) copyBody(s *tunnel.Session, resp *http.Response, w io.Writer, length int64) error {
	body := &timed{conn: c.up.conn, r: resp.Body, idle: c.cfg.Timeouts.Idle}
	if length != -1 {
		_, err := s.Copy(w, body, metrics.DirectionDownload)
		return err
	}
	if _, err := s.Copy(chunkWriter{w}, body, metrics.DirectionDownload); err != nil {
		return err
	}
	_, err := s.Copy(w, bytes.NewReader(lastChunk(resp.Trailer)), metrics.DirectionDownload)
	return err
}

// cut ends a forwarded request whose response broke off, with both connections.
func (c *client) cut(s *tunnel.Session, err error) {
	s.Closing(tunnel.ReasonError)
	s.Log().Info("response cut short", "destination", s.Requested(), "err", err)
	c.up.close(c.conn)
	c.up = nil
	c.closing = true
}

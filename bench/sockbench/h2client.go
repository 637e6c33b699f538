package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// h2Client opens tunnels as CONNECT streams (RFC 9113 §8.5) on a few HTTP/2
// connections to an HTTPS proxy, spread round robin: golang.org/x/net/http2's
// client does the framing and flow control. A connection is dialled at its
// first use and dialled again when it has closed (a GOAWAY, an error). Safe
// for concurrent use.
type h2Client struct {
	addr    string
	tls     *tlsClient // its handshakes count in the run's
	timeout time.Duration
	tr      *http2.Transport

	mu    sync.Mutex
	conns []*http2.ClientConn // nil until dialled
	next  int
}

func newH2Client(addr string, tc *tlsClient, conns int, timeout time.Duration) *h2Client {
	return &h2Client{addr: addr, tls: tc, timeout: timeout, conns: make([]*http2.ClientConn, conns),
		tr: &http2.Transport{DisableCompression: true}}
}

// conn returns the next connection, dialling it when it is not up.
func (h *h2Client) conn(ctx context.Context) (*http2.ClientConn, error) {
	h.mu.Lock()
	defer h.mu.Unlock() // dials are serialised: there are only -h2-conns of them
	i := h.next
	h.next = (h.next + 1) % len(h.conns)
	if cc := h.conns[i]; cc != nil && !cc.State().Closed && !cc.State().Closing {
		return cc, nil
	}
	nd := net.Dialer{Timeout: h.timeout}
	raw, err := nd.DialContext(ctx, "tcp", h.addr)
	if err != nil {
		return nil, &stepError{"dial", err}
	}
	raw.SetDeadline(time.Now().Add(h.timeout))
	tc, err := h.tls.handshake(ctx, raw)
	if err != nil {
		raw.Close()
		return nil, err
	}
	raw.SetDeadline(time.Time{})
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		return nil, &stepError{"tls", fmt.Errorf("ALPN chose %q, not h2: the proxy speaks no HTTP/2", p)}
	}
	cc, err := h.tr.NewClientConn(tc)
	if err != nil {
		tc.Close()
		return nil, &stepError{"h2", err}
	}
	h.conns[i] = cc
	return cc, nil
}

// dial opens a tunnel to target as c on the next connection. Errors are
// [*stepError]s.
func (h *h2Client) dial(ctx context.Context, c credential, target netip.AddrPort) (net.Conn, error) {
	cc, err := h.conn(ctx)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	sctx, cancel := context.WithCancel(context.Background())
	req := (&http.Request{Method: http.MethodConnect, Host: target.String(), URL: &url.URL{Host: target.String()},
		Header: http.Header{}, Body: pr, ContentLength: -1, Proto: "HTTP/2.0", ProtoMajor: 2}).WithContext(sctx)
	if c.user != "" {
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(c.user+":"+c.password)))
	}
	timer := time.AfterFunc(h.timeout, cancel) // bounds the wait for the answer
	resp, err := cc.RoundTrip(req)
	timer.Stop()
	if err == nil && resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err = fmt.Errorf("CONNECT answered %s", resp.Status)
	}
	if err != nil {
		cancel()
		pw.Close()
		return nil, &stepError{"connect", err}
	}
	return &h2Stream{body: resp.Body, up: pw, cancel: cancel, local: h.addr}, nil
}

// Close closes every connection.
func (h *h2Client) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, cc := range h.conns {
		if cc != nil {
			cc.Close()
		}
	}
}

// h2Stream is a CONNECT stream as a net.Conn: reads come from the response
// body, writes go to the request body. A deadline that passes ends the stream
// (RST_STREAM), which is all the scenarios need of one: they set deadlines to
// bound a step or to end the measured phase, and clear them before they pass.
type h2Stream struct {
	body   io.ReadCloser
	up     *io.PipeWriter
	cancel context.CancelFunc
	local  string

	mu      sync.Mutex
	timers  [2]*time.Timer // read, write
	expired [2]bool
}

func (s *h2Stream) Read(p []byte) (int, error) {
	n, err := s.body.Read(p)
	if err != nil && s.passed(0) {
		err = os.ErrDeadlineExceeded
	}
	return n, err
}

func (s *h2Stream) Write(p []byte) (int, error) {
	n, err := s.up.Write(p)
	if err != nil && s.passed(1) {
		err = os.ErrDeadlineExceeded
	}
	return n, err
}

// Close ends both directions: END_STREAM upwards, and a reset of the stream
// if the proxy has not ended it yet.
func (s *h2Stream) Close() error {
	s.up.Close()
	err := s.body.Close()
	s.cancel()
	s.mu.Lock()
	for _, t := range s.timers {
		if t != nil {
			t.Stop()
		}
	}
	s.mu.Unlock()
	return err
}

func (s *h2Stream) passed(i int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expired[i]
}

// setDeadline arms direction i's timer (0 read, 1 write) for t; zero disarms.
func (s *h2Stream) setDeadline(i int, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timers[i] != nil {
		s.timers[i].Stop()
		s.timers[i] = nil
	}
	s.expired[i] = false
	if t.IsZero() {
		return
	}
	s.timers[i] = time.AfterFunc(time.Until(t), func() {
		s.mu.Lock()
		s.expired[i] = true
		s.mu.Unlock()
		if i == 0 {
			s.body.Close()
		} else {
			s.up.CloseWithError(os.ErrDeadlineExceeded)
		}
	})
}

func (s *h2Stream) SetDeadline(t time.Time) error {
	s.setDeadline(0, t)
	s.setDeadline(1, t)
	return nil
}
func (s *h2Stream) SetReadDeadline(t time.Time) error  { s.setDeadline(0, t); return nil }
func (s *h2Stream) SetWriteDeadline(t time.Time) error { s.setDeadline(1, t); return nil }
func (s *h2Stream) LocalAddr() net.Addr                { return h2Addr(s.local) }
func (s *h2Stream) RemoteAddr() net.Addr               { return h2Addr(s.local) }

// h2Addr names a stream's connection for net.Conn's address methods.
type h2Addr string

func (a h2Addr) Network() string { return "h2" }
func (a h2Addr) String() string  { return string(a) }

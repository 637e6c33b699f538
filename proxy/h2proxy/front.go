// Package h2proxy is sockshaper's HTTP/2 proxy front, on the HTTPS listener
// when a client's TLS handshake chose "h2" by ALPN (Chromium does with an
// HTTPS proxy): one connection carries every tunnel and request of a browser,
// each on its own stream and each a session of its own, with its own
// accounting line, class and buckets (a user's streams share the user's
// buckets, as separate connections do). The framing, flow control and the
// protocol's defences (malformed CONNECT, control-frame floods, rapid reset)
// are golang.org/x/net/http2's; this front turns streams into the core's
// requests and the core's outcomes into responses.
//
// Flow control never lets one stream's slow reader stall the others: each
// stream may buffer streamWindow bytes of its client's data, and the
// connection as much as all its streams together.
package h2proxy

import (
	"bufio"
	"context"
	"io"
	"log"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

const (
	// streamWindow is how much a stream's client may send ahead of what the
	// relay has taken: 256 KiB keeps a tunnel at tens of MB/s over a
	// campus round trip, and is what a stuck stream can hold.
	streamWindow = 256 << 10
	// maxConnWindow bounds a connection's window (streamWindow per stream
	// otherwise): what one connection's streams can make the proxy buffer.
	maxConnWindow = 64 << 20
	// maxHeaderBytes bounds a stream's header list, as the HTTP/1.1 front
	// bounds a head.
	maxHeaderBytes = 16 << 10
	// maxReadFrame is the largest frame a client may send (SETTINGS_MAX_FRAME_SIZE):
	// HTTP/2's default, which browsers send anyway. The connection's frame
	// buffer grows to the largest frame read and stays that size, so x/net's
	// default of 1 MiB let every client connection make the proxy hold 1 MiB;
	// and Go clients size each request body's send buffer by it (512 KiB per
	// stream at 1 MiB, 16 KiB at this).
	maxReadFrame = 16 << 10
)

// Front serves HTTP/2 connections. It holds nothing of its own; it is safe for
// concurrent use.
type Front struct{}

// connState is one HTTP/2 connection as the front serves it.
type connState struct {
	conn *tunnel.Conn

	mu      sync.Mutex
	active  int           // streams whose handler runs
	streams int           // streams so far
	cred    string        // the Proxy-Authorization last verified on the connection
	id      auth.Identity // who it verified
	loginAt time.Time     // when
	sso     ticketLogin   // the connection's Kerberos login (negotiate.go)
}

// Serve serves one connection whose TLS handshake chose h2, until it closes,
// its keep-alive wait passes with no stream, or the server drains it (GOAWAY,
// then the streams end or are cut at the drain's deadline).
func (Front) Serve(conn *tunnel.Conn, _ *bufio.Reader) {
	nc, err := waitForClient(conn.Net())
	if err != nil {
		conn.Log().Debug("http2 connection closed before its preface", "err", err)
		return
	}
	cfg := conn.Policy().Config
	streams := cfg.TLS.MaxConcurrentStreams
	base := &http.Server{MaxHeaderBytes: maxHeaderBytes, ErrorLog: log.New(io.Discard, "", 0)}
	h2 := &http2.Server{
		MaxConcurrentStreams:         uint32(streams),
		MaxUploadBufferPerStream:     streamWindow,
		MaxUploadBufferPerConnection: int32(min(streamWindow*streams, maxConnWindow)),
		IdleTimeout:                  cfg.HTTP.KeepAlive,
		MaxDecoderHeaderTableSize:    4 << 10,
		MaxReadFrameSize:             maxReadFrame,
		CountError:                   func(kind string) { conn.Log().Debug("http2 protocol error", "kind", kind) },
	}
	if err := http2.ConfigureServer(base, h2); err != nil {
		conn.Log().Error("http2 server", "err", err)
		return
	}
	conn.OnDrain(func() {
		// GOAWAY on this connection: shutting down a server that serves no
		// listener of its own runs its hooks and returns.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		base.Shutdown(ctx)
	})
	c := &connState{conn: conn}
	rec := conn.Core().Recorder()
	rec.HTTP2Conn(1, 0)
	defer func() { rec.HTTP2Conn(-1, c.streams) }()
	// The TLS handshake's deadline ends here: streams have their own, and the
	// connection waits with none at most http.keepalive (h2.IdleTimeout).
	nc.SetDeadline(time.Time{})
	conn.SetIdle(true)
	h2.ServeConn(nc, &http2.ServeConnOpts{Context: conn.Context(), BaseConfig: base, Handler: c})
}

// begin and end count a stream's handler: the connection is idle (first to be
// evicted, closed at once by a drain) while none runs.
func (c *connState) begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams++
	if c.active++; c.active == 1 {
		c.conn.SetIdle(false)
	}
}

func (c *connState) end() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active--; c.active == 0 {
		c.conn.SetIdle(true)
	}
}

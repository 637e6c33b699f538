package proxy

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/sockshaper/sockshaper/internal/testca"
)

var h2MemStreams = flag.Int("h2-streams", 300, "CONNECT streams TestHTTP2IdleStreamMemory opens")

// startTLSHarness serves h's proxy on an HTTPS listener too, with a
// certificate for 127.0.0.1 from a throwaway CA, and returns its address and
// a client configuration that trusts it.
func startTLSHarness(t *testing.T, h *harness) (string, *tls.Config) {
	t.Helper()
	ca := testca.New(t, "h2 test CA")
	pair := ca.Server(t, time.Hour, "127.0.0.1")
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	h.srv.SetTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.srv.ServeTLS(ln) }()
	t.Cleanup(func() {
		h.srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("ServeTLS returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String(), &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", NextProtos: []string{"h2"}}
}

// h2Client is a bare HTTP/2 client on the framer, one step at a time on the
// test's goroutine: unlike x/net's Transport, which holds a send buffer of up
// to 512 KiB for every request body still open, it holds nothing per stream,
// so that what the process holds per stream is the proxy's.
type h2Client struct {
	t    *testing.T
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	next uint32 // the next stream's id
}

func dialH2Client(t *testing.T, addr string, cfg *tls.Config) *h2Client {
	t.Helper()
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	h := &h2Client{t: t, fr: http2.NewFramer(c, c), next: 1}
	h.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.hbuf)
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return h
}

// connectEcho opens a CONNECT stream to target as alice and echoes one
// message through it, answering the connection's own frames on the way; the
// stream stays open.
func (h *h2Client) connectEcho(target string) {
	h.t.Helper()
	id := h.next
	h.next += 2
	h.hbuf.Reset()
	for _, f := range [][2]string{{":method", "CONNECT"}, {":authority", target},
		{"proxy-authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+testPassword))}} {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.hbuf.Bytes(), EndHeaders: true}); err != nil {
		h.t.Fatal(err)
	}
	const msg = "hello through h2"
	var got []byte
	for answered := false; len(got) < len(msg); {
		f, err := h.fr.ReadFrame()
		if err != nil {
			h.t.Fatalf("stream %d: %v", id, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				h.fr.WriteSettingsAck()
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				h.fr.WritePing(true, f.Data)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID != id || f.PseudoValue("status") != "200" {
				h.t.Fatalf("stream %d: answer %v on stream %d", id, f.Fields, f.StreamID)
			}
			answered = true
			h.fr.WriteData(id, false, []byte(msg))
		case *http2.DataFrame:
			if f.StreamID == id && answered {
				got = append(got, f.Data()...)
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			h.t.Fatalf("stream %d: %v", id, f)
		}
	}
	if string(got) != msg {
		h.t.Fatalf("stream %d echoed %q", id, got)
	}
}

// TestHTTP2IdleStreamMemory opens many CONNECT streams on one HTTP/2
// connection, each of which echoed one message and then waits, and checks
// what each costs the proxy while idle. An idle upload direction must not hold
// a copy buffer (32 KiB) while it waits for the client's next DATA frame, as
// it did when the relay read the stream through io.CopyBuffer.
func TestHTTP2IdleStreamMemory(t *testing.T) {
	n := *h2MemStreams
	h := newHarness(t, "limits: {max_sessions: 5000, max_sessions_per_client_ip: 5000, max_sessions_per_user: 5000}\ntls: {max_concurrent_streams: 1000}\n")
	addr, cfg := startTLSHarness(t, h)
	target := startTarget(t, echo)
	c := dialH2Client(t, addr, cfg)
	c.connectEcho(target) // the connection's own first costs
	heap0, rss0 := memNow(t)
	for range n {
		c.connectEcho(target)
	}
	time.Sleep(200 * time.Millisecond) // the relays settle into their waits
	heap1, rss1 := memNow(t)
	perHeap, perRSS := (heap1-heap0)/int64(n), (rss1-rss0)/int64(n)
	t.Logf("%d idle CONNECT streams on one connection: %d B heap and %d B RSS each", n, perHeap, perRSS)
	// A stream's server side in net/http, the front's inbox with its 4 KiB
	// read-ahead, the session and the target's socket take about 12 KiB; one
	// copy buffer held would add 32.
	if limit := int64(24 << 10); perHeap > limit {
		t.Errorf("each idle stream holds %d B of heap, want at most %d", perHeap, limit)
	}
}

// TestHTTP2FrameSizeBounded: the proxy announces HTTP/2's default largest
// frame (16 KiB) and refuses a larger one with FRAME_SIZE_ERROR: the
// connection's frame buffer grows to the largest frame read and keeps that
// size, so with x/net's default of 1 MiB each client connection could make
// the proxy hold 1 MiB.
func TestHTTP2FrameSizeBounded(t *testing.T) {
	h := newHarness(t, "")
	addr, cfg := startTLSHarness(t, h)
	target := startTarget(t, echo)
	c := dialH2Client(t, addr, cfg)
	f, err := c.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("the server's first frame is %v, want its SETTINGS", f)
	}
	if v, ok := sf.Value(http2.SettingMaxFrameSize); ok && v > 16<<10 {
		t.Errorf("SETTINGS_MAX_FRAME_SIZE %d, want at most %d", v, 16<<10)
	}
	c.fr.WriteSettingsAck()
	c.connectEcho(target) // stream 1, open
	if err := c.fr.WriteData(1, false, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			t.Fatalf("a 64 KiB DATA frame: the connection ended with %v, want GOAWAY FRAME_SIZE_ERROR", err)
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeFrameSize {
				t.Errorf("a 64 KiB DATA frame: GOAWAY %v, want FRAME_SIZE_ERROR", ga.ErrCode)
			}
			return
		}
		if df, ok := f.(*http2.DataFrame); ok && len(df.Data()) > 0 {
			t.Fatal("a 64 KiB DATA frame was taken and relayed")
		}
	}
}

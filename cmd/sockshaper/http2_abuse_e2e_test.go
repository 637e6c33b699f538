package main

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawH2 is an HTTP/2 connection to the proxy driven frame by frame, to send
// what a well-behaved client never would.
type rawH2 struct {
	t    *testing.T
	conn *tls.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer
	next uint32 // the next client stream id
}

func dialRawH2(t *testing.T, addr string, cfg *tls.Config) *rawH2 {
	t.Helper()
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	r := &rawH2{t: t, conn: c, fr: http2.NewFramer(c, c), next: 1}
	r.enc = hpack.NewEncoder(&r.hbuf)
	r.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := r.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return r
}

// headers encodes fields (pseudo-fields first) into one header block.
func (r *rawH2) headers(fields ...string) []byte {
	r.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		r.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return append([]byte(nil), r.hbuf.Bytes()...)
}

// open sends a HEADERS frame of block on a new stream and returns its id.
func (r *rawH2) open(block []byte, endStream bool) uint32 {
	id := r.next
	r.next += 2
	if err := r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true, EndStream: endStream}); err != nil {
		r.t.Logf("write HEADERS: %v", err)
	}
	return id
}

// until reads frames until match says so, or the connection fails (returned),
// or 10 s pass.
func (r *rawH2) until(match func(http2.Frame) bool) error {
	r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer r.conn.SetReadDeadline(time.Time{})
	for {
		f, err := r.fr.ReadFrame()
		if err != nil {
			return err
		}
		if match(f) {
			return nil
		}
	}
}

// connectFields are a valid CONNECT's fields to target as alice.
func connectFields(target string) []string {
	return []string{":method", "CONNECT", ":authority", target, "proxy-authorization", "Basic " + basicAuth("alice", password)}
}

// daemonRSS returns the daemon's resident memory in KiB.
func (d *process) rss() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		d.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	return 0
}

// TestHTTP2Abuse: what an attacker on the campus network sends over HTTP/2 is
// refused without breaking anything else: each case runs against the same
// daemon, and afterwards a real client's tunnel still works, the memory and
// goroutines are back near where they were, and no stream is left open.
func TestHTTP2Abuse(t *testing.T) {
	d, addr, ca, _ := httpsDaemon(t, "http: {keepalive: 3s}\n")
	cfg := &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}
	echo := echoServer(t)
	goroutines := d.metric("go_goroutines")
	rssBefore := d.rss()
	cases := []struct {
		name string
		run  func(t *testing.T, r *rawH2)
	}{
		{"CONNECT with :path and :scheme", func(t *testing.T, r *rawH2) {
			id := r.open(r.headers(":method", "CONNECT", ":scheme", "https", ":path", "/", ":authority", echo), false)
			err := r.until(func(f http2.Frame) bool {
				rst, ok := f.(*http2.RSTStreamFrame)
				return ok && rst.StreamID == id && rst.ErrCode == http2.ErrCodeProtocol
			})
			if err != nil {
				t.Errorf("malformed CONNECT: %v, want RST_STREAM PROTOCOL_ERROR", err)
			}
		}},
		{"header list too large", func(t *testing.T, r *rawH2) {
			big := strings.Repeat("x", 60<<10)
			id := r.open(r.headers(append(connectFields(echo), "x-big", big)...), false)
			err := r.until(func(f http2.Frame) bool {
				switch f := f.(type) {
				case *http2.MetaHeadersFrame:
					return f.StreamID == id && f.PseudoValue("status") == "431"
				case *http2.RSTStreamFrame:
					return f.StreamID == id
				case *http2.GoAwayFrame:
					return true
				}
				return false
			})
			if err != nil && err != io.EOF {
				t.Errorf("60 KiB of headers: %v, want 431, RST_STREAM or GOAWAY", err)
			}
		}},
		{"rapid reset", func(t *testing.T, r *rawH2) {
			for range 5000 {
				id := r.open(r.headers(connectFields(echo)...), false)
				if err := r.fr.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
					return // the server gave up on the connection: fine
				}
			}
			r.until(func(http2.Frame) bool { return false }) // drain until it closes or 10 s
		}},
		{"SETTINGS flood", func(t *testing.T, r *rawH2) {
			r.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			for range 100000 {
				if err := r.fr.WriteSettings(); err != nil {
					return
				}
			}
			if err := r.until(func(http2.Frame) bool { return false }); err == nil {
				t.Error("100,000 unread SETTINGS: the connection lives on")
			}
		}},
		{"PING flood", func(t *testing.T, r *rawH2) {
			r.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
			for range 100000 {
				if err := r.fr.WritePing(false, [8]byte{1}); err != nil {
					return
				}
			}
			if err := r.until(func(http2.Frame) bool { return false }); err == nil {
				t.Error("100,000 unread PINGs: the connection lives on")
			}
		}},
		{"a request that never ends its header block", func(t *testing.T, r *rawH2) {
			r.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: r.headers(connectFields(echo)...), EndHeaders: false})
			start := time.Now()
			r.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err := io.Copy(io.Discard, r.conn)
			if took := time.Since(start); err != nil && strings.Contains(err.Error(), "timeout") || took > 20*time.Second {
				t.Errorf("a half-sent header block held the connection %v (%v)", took, err)
			}
		}},
		{"10,000 idle streams", func(t *testing.T, r *rawH2) {
			for range 10000 {
				r.open(r.headers(connectFields(echo)...), false)
			}
			time.Sleep(2 * time.Second)
			if n := d.metric(`sockshaper_sessions_active{app="other",command="connect",front="http2"}`); n > 100 {
				t.Errorf("%v tunnels open on one connection, above max_concurrent_streams 100", n)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRawH2(t, addr, cfg)
			tc.run(t, r)
			r.conn.Close()
			// A real client is served beside and after it.
			p := dialH2(t, addr, cfg, "alice")
			resp, up, err := p.tunnel(echo)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("a real tunnel after %s: %v, %v", tc.name, resp, err)
			}
			echoOnce(t, resp, up, "still served")
			up.Close()
		})
	}
	deadline := time.Now().Add(20 * time.Second)
	for d.metric("go_goroutines") > goroutines+20 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if g := d.metric("go_goroutines"); g > goroutines+20 {
		t.Errorf("%v goroutines after the abuse, against %v before", g, goroutines)
	}
	rssAfter := d.rss()
	t.Logf("RSS %d KiB before, %d KiB after; goroutines %v → %v", rssBefore, rssAfter, goroutines, d.metric("go_goroutines"))
	if rssAfter > rssBefore+200<<10 {
		t.Errorf("RSS grew from %d to %d KiB", rssBefore, rssAfter)
	}
	_ = net.Dial
}

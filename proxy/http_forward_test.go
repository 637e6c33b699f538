package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recordingTarget is a TCP server that records every byte it receives and
// answers each connection with a fixed response.
type recordingTarget struct {
	addr string
	mu   sync.Mutex
	got  bytes.Buffer
}

func startRecordingTarget(t *testing.T, answer string) *recordingTarget {
	r := &recordingTarget{}
	r.addr = startTarget(t, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			r.mu.Lock()
			r.got.Write(buf[:n])
			r.mu.Unlock()
			if bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
				io.WriteString(c, answer)
			}
			if err != nil {
				return
			}
		}
	})
	return r
}

func (r *recordingTarget) received() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got.String()
}

// TestHTTPSmugglingFormsRefused sends each form of request smuggling to the
// proxy: each gets 400, its connection is closed, and nothing reaches the origin.
func TestHTTPSmugglingFormsRefused(t *testing.T) {
	h := newHarness(t, "")
	target := startRecordingTarget(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	start := "POST http://" + target.addr + "/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: " + basic("alice", testPassword) + "\r\n"
	smuggle := "GET http://" + target.addr + "/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
	tests := []struct{ name, fields, body string }{
		{"length and chunked", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n" + smuggle},
		{"chunked and length", "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n", "0\r\n\r\n" + smuggle},
		{"two lengths", "Content-Length: 0\r\nContent-Length: 60\r\n", smuggle},
		{"length list", "Content-Length: 0, 60\r\n", smuggle},
		{"obs-fold", "X-A: 1\r\n Transfer-Encoding: chunked\r\n", ""},
		{"chunked not last", "Transfer-Encoding: chunked, identity\r\nContent-Length: 3\r\n", "abc"},
		{"unknown coding", "Transfer-Encoding: xchunked\r\n", "0\r\n\r\n"},
		{"space before colon", "Transfer-Encoding : chunked\r\n", "0\r\n\r\n" + smuggle},
		{"bare LF", "X-A: 1\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"},
		{"bad chunk size", "Transfer-Encoding: chunked\r\n", "zz\r\nabc\r\n0\r\n\r\n" + smuggle},
		{"chunk size with a sign", "Transfer-Encoding: chunked\r\n", "+3\r\nabc\r\n0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", h.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, start+tc.fields+"\r\n"+tc.body)
			got, err := io.ReadAll(c) // to the close
			if err != nil {
				t.Fatalf("connection not closed: %v", err)
			}
			if !bytes.HasPrefix(got, []byte("HTTP/1.1 400 ")) || bytes.Count(got, []byte("HTTP/1.1")) != 1 {
				t.Errorf("answer %q, want one 400", got)
			}
		})
	}
	if got := target.received(); strings.Contains(got, "smuggled") || strings.Contains(got, "Transfer-Encoding") && strings.Contains(got, "Content-Length") {
		t.Errorf("the origin received:\n%s", got)
	}
}

// TestHTTPForwardedRequest checks what the origin receives: origin form, the
// URI's Host, no hop-by-hop fields, no X-Forwarded-For unless turned on.
func TestHTTPForwardedRequest(t *testing.T) {
	for _, xff := range []bool{false, true} {
		t.Run(fmt.Sprint("forwarded_for=", xff), func(t *testing.T) {
			h := newHarness(t, fmt.Sprintf("http: {forwarded_for: %v}", xff))
			target := startRecordingTarget(t, "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 5\r\nContent-Length: 2\r\n\r\nok")
			resp := roundTrip(t, h.addr, "GET http://"+target.addr+"/p?q=1 HTTP/1.1\r\nHost: wrong\r\n"+
				"Proxy-Authorization: "+basic("alice", testPassword)+"\r\nProxy-Connection: keep-alive\r\n"+
				"Connection: X-Hop\r\nX-Hop: h\r\nTE: trailers\r\nUpgrade: websocket\r\nX-Keep: k\r\nX-Forwarded-For: 192.0.2.9\r\n\r\n")
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || string(body) != "ok" || resp.Header.Get("X-Secret") != "" || resp.Header.Get("Keep-Alive") != "" {
				t.Errorf("response %d %v %q", resp.StatusCode, resp.Header, body)
			}
			got := target.received()
			want := "GET /p?q=1 HTTP/1.1\r\nHost: " + target.addr + "\r\nX-Keep: k\r\n"
			if !strings.HasPrefix(got, want) {
				t.Errorf("origin received:\n%s\nwant it to start with:\n%s", got, want)
			}
			for _, f := range []string{"Proxy-", "X-Hop", "TE:", "Upgrade", "Connection", "wrong"} {
				if strings.Contains(got, f) {
					t.Errorf("origin received %q:\n%s", f, got)
				}
			}
			hasXFF := strings.Contains(got, "X-Forwarded-For: 192.0.2.9, 127.0.0.1\r\n")
			if xff != hasXFF || !xff && !strings.Contains(got, "X-Forwarded-For: 192.0.2.9\r\n") {
				t.Errorf("X-Forwarded-For with forwarded_for %v:\n%s", xff, got)
			}
		})
	}
}

// TestHTTPChunkedBodiesBothWays uploads a chunked body (re-chunked to the
// origin), a body of known length, and a body with Expect: 100-continue, and
// reads the chunked echo; an HTTP/1.0 client gets the unknown-length response
// up to the close.
func TestHTTPChunkedBodiesBothWays(t *testing.T) {
	h := newHarness(t, "")
	plain := origin(t, false)
	auth := "Proxy-Authorization: " + basic("alice", testPassword) + "\r\n"
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	big := strings.Repeat("0123456789", 50_000)
	chunks := "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
	requests := []struct{ fields, body, want string }{
		{"Transfer-Encoding: chunked\r\n", chunks, "hello world"},
		{fmt.Sprintf("Content-Length: %d\r\n", len(big)), big, big},
		{"Content-Length: 5\r\nExpect: 100-continue\r\n", "abcde", "abcde"},
	}
	for i, r := range requests {
		fmt.Fprintf(c, "POST %s/echo HTTP/1.1\r\nHost: x\r\n%s%s\r\n", plain.URL, auth, r.fields)
		if strings.Contains(r.fields, "Expect") {
			line, _ := br.ReadString('\n')
			if line != "HTTP/1.1 100 Continue\r\n" {
				t.Fatalf("request %d: %q before the body, want 100 Continue", i, line)
			}
			br.ReadString('\n')
		}
		io.WriteString(c, r.body)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || string(body) != r.want || len(resp.TransferEncoding) == 0 {
			t.Fatalf("request %d: %v %q (%d bytes), chunked %v", i, err, body[:min(len(body), 40)], len(body), resp.TransferEncoding)
		}
	}
	resp := roundTrip(t, h.addr, "POST "+plain.URL+"/echo HTTP/1.0\r\n"+auth+"Content-Length: 3\r\n\r\nold")
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "old" || !resp.Close || len(resp.TransferEncoding) != 0 {
		t.Errorf("HTTP/1.0 client: %q, %v, close %v, %v", body, err, resp.Close, resp.TransferEncoding)
	}
	waitFor(t, "sessions", func() bool { return h.rec.get("http: closed request other ok") == 4 })
	if up := h.rec.get("bytes other upload tcp"); up < int64(len(big)) {
		t.Errorf("upload bytes recorded: %d, want at least %d", up, len(big))
	}
}

// TestHTTPPipelinedRequests sends three requests at once; the answers come in
// order on the one connection.
func TestHTTPPipelinedRequests(t *testing.T) {
	h := newHarness(t, "")
	plain := origin(t, false)
	auth := "Proxy-Authorization: " + basic("alice", testPassword) + "\r\n"
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var all strings.Builder
	for _, p := range []string{"/hello", "/headers", "/hello"} {
		fmt.Fprintf(&all, "GET %s%s HTTP/1.1\r\nHost: x\r\n%s\r\n", plain.URL, p, auth)
	}
	io.WriteString(c, all.String())
	br := bufio.NewReader(c)
	for i, want := range []string{"hello from", "Via: 1.1 sockshaper", "hello from"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), want) {
			t.Errorf("response %d: %q, want %q in it", i, body, want)
		}
	}
}

// TestHTTPClassification: a forwarded request is classified by its URI's host,
// a CONNECT to a bare address by the TLS server name the client sends in the
// tunnel, each request of one connection on its own.
func TestHTTPClassification(t *testing.T) {
	web := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "tls ok") }))
	defer web.Close()
	plain := origin(t, false)
	_, tlsPort := splitHostPort(t, web.Listener.Addr().String())
	_, plainPort := splitHostPort(t, plain.Listener.Addr().String())
	h := newHarness(t, fmt.Sprintf("apps: {video: {domains: [video.campus.test, localhost.test], ports: [tcp/%d, tcp/%d]}}\n", tlsPort, plainPort))
	client := httpClient(h.addr, "alice")
	client.Transport.(*http.Transport).TLSClientConfig.ServerName = "video.campus.test"
	defer client.CloseIdleConnections()
	if code, body := get(t, client, "https://"+web.Listener.Addr().String()+"/"); code != 200 || body != "tls ok" {
		t.Fatalf("CONNECT: %d %q", code, body)
	}
	for _, u := range []string{fmt.Sprintf("http://localhost.test:%d/hello", plainPort), plain.URL + "/hello"} {
		if code, _ := get(t, client, u); code != 200 {
			t.Fatalf("GET %s: %d", u, code)
		}
	}
	client.CloseIdleConnections()
	waitFor(t, "classes", func() bool {
		return h.rec.get("http: closed connect video ok") == 1 && h.rec.get("http: closed request video ok") == 1 &&
			h.rec.get("http: closed request other ok") == 1
	})
}

// TestHTTPClientLeavingMidResponse: a client that closes while a response
// streams to it ends its session (close reason error) and nothing else: the
// proxy neither panics nor keeps reading the origin.
func TestHTTPClientLeavingMidResponse(t *testing.T) {
	h := newHarness(t, "")
	var served sync.WaitGroup
	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		defer served.Done()
		buf := make([]byte, 32<<10)
		for {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}))
	defer stream.Close()
	for _, close := range []string{"", "Connection: close\r\n"} {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "GET %s/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: %s\r\n%s\r\n", stream.URL, basic("alice", testPassword), close)
		io.ReadFull(c, make([]byte, 100<<10))
		c.Close()
	}
	waitFor(t, "sessions ended", func() bool { return h.rec.get("http: closed request other ok") == 2 })
	served.Wait() // the origin saw its connections close
	if strings.Contains(h.logs.String(), "panic") {
		t.Errorf("proxy log:\n%s", h.logs.String())
	}
}

// TestHTTPOriginClosingKeptConnection: an origin that closes its connection
// after each response without saying so: the next request of the client's
// keep-alive connection goes on a new one, and the client sees nothing of it.
func TestHTTPOriginClosingKeptConnection(t *testing.T) {
	h := newHarness(t, "")
	var accepted atomic.Int32
	target := startTarget(t, func(c net.Conn) {
		accepted.Add(1)
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for i := range 5 {
		fmt.Fprintf(c, "GET http://%s/%d HTTP/1.1\r\nHost: x\r\nProxy-Authorization: %s\r\n\r\n", target, i, basic("alice", testPassword))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
	}
	if n := accepted.Load(); n != 5 {
		t.Errorf("origin accepted %d connections for 5 requests, want 5", n)
	}
}

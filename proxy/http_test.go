package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// httpClient returns a net/http client that sends everything through the proxy
// at proxyAddr as user (no credentials when user is empty).
func httpClient(proxyAddr, user string) *http.Client {
	u := &url.URL{Scheme: "http", Host: proxyAddr}
	if user != "" {
		u.User = url.UserPassword(user, testPassword)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		Proxy:           http.ProxyURL(u),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // httptest's certificate
	}}
}

// origin serves a few paths: /hello, /echo (the request body back, chunked),
// /big (1 MiB of known length), /headers (the request's fields, one a line).
func origin(t *testing.T, tlsOn bool) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello from "+r.Host) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // Go's server may drop a body left unread after a flush
		w.Header().Set("X-Request-Length", fmt.Sprint(r.ContentLength))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush() // no length: chunked
		w.Write(body[len(body)/2:])
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(1<<20))
		w.Write(bytes.Repeat([]byte("b"), 1<<20))
	})
	mux.HandleFunc("/headers", func(w http.ResponseWriter, r *http.Request) {
		r.Header.Write(w)
		fmt.Fprintf(w, "Host: %s\n", r.Host)
	})
	var srv *httptest.Server
	if tlsOn {
		srv = httptest.NewTLSServer(mux)
	} else {
		srv = httptest.NewServer(mux)
	}
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestHTTPForwardAndConnectWithGoClient(t *testing.T) {
	h := newHarness(t, "")
	plain, secure := origin(t, false), origin(t, true)
	c := httpClient(h.addr, "alice")
	if code, body := get(t, c, plain.URL+"/hello"); code != 200 || body != "hello from "+strings.TrimPrefix(plain.URL, "http://") {
		t.Errorf("forwarded GET: %d %q", code, body)
	}
	if code, body := get(t, c, secure.URL+"/hello"); code != 200 || !strings.HasPrefix(body, "hello from") {
		t.Errorf("GET through CONNECT: %d %q", code, body)
	}
	code, body := get(t, c, plain.URL+"/big")
	if code != 200 || len(body) != 1<<20 {
		t.Errorf("1 MiB download: %d, %d bytes", code, len(body))
	}
	c.CloseIdleConnections() // ends the tunnel
	waitFor(t, "sessions", func() bool {
		return h.rec.get("http: closed request other ok") == 2 && h.rec.get("http: closed connect other ok") == 1
	})
	if n := h.rec.get("bytes other download tcp"); n < 1<<20 {
		t.Errorf("download bytes recorded: %d, want at least 1 MiB", n)
	}
	if n := h.rec.get("auth ok"); n != 3 {
		t.Errorf("auth ok = %d, want 3 (one per request)", n)
	}
}

func TestHTTPAuthChallenges(t *testing.T) {
	h := newHarness(t, "")
	plain := origin(t, false)
	for _, tc := range []struct {
		name, user, password string
	}{{"missing", "", ""}, {"wrong password", "alice", "nope"}, {"unknown user", "mallory", testPassword}} {
		t.Run(tc.name, func(t *testing.T) {
			req := "GET " + plain.URL + "/hello HTTP/1.1\r\nHost: x\r\n"
			if tc.user != "" {
				req += "Proxy-Authorization: " + basic(tc.user, tc.password) + "\r\n"
			}
			resp := roundTrip(t, h.addr, req+"\r\n")
			if resp.StatusCode != 407 || !strings.Contains(resp.Header.Get("Proxy-Authenticate"), `Basic realm="sockshaper"`) {
				t.Fatalf("status %d, Proxy-Authenticate %q; want 407 with a Basic challenge", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
			}
			if b, _ := io.ReadAll(resp.Body); strings.Contains(string(b), "hello") {
				t.Errorf("407 carries the origin's body: %q", b)
			}
		})
	}
	// Each session's line comes once its client has its answer: the request
	// without credentials was challenged, the two others failed.
	waitFor(t, "auth_failed sessions", func() bool { return h.rec.get("http: rejected request other auth_failed") == 2 })
	waitFor(t, "auth_required session", func() bool { return h.rec.get("http: rejected request other auth_required") == 1 })
	if n := h.rec.get("auth failed"); n != 2 {
		t.Errorf("auth failures = %d, want 2 (a request without credentials is no attempt)", n)
	}
}

func basic(user, password string) string {
	r := http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

// roundTrip sends a raw request on a new connection and reads one response.
func roundTrip(t *testing.T, proxyAddr, raw string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	return resp
}

func TestHTTPRefusalStatuses(t *testing.T) {
	h := newHarness(t, `
limits: {max_sessions_per_user: 1}
http: {connect_ports: ["1-8442", "8444-65535"]}
`)
	auth := "Proxy-Authorization: " + basic("alice", testPassword) + "\r\n"
	closed := closedPort(t)
	tests := []struct {
		name, request string
		status        int
		result        string
	}{
		{"denied address", "GET http://127.0.0.2/ HTTP/1.1\r\nHost: x\r\n" + auth, 403, "http: rejected request other destination_denied"},
		{"name resolving to denied", "GET http://denied.test/ HTTP/1.1\r\nHost: x\r\n" + auth, 403, "http: rejected request other destination_denied"},
		{"unresolvable", "GET http://nowhere.test/ HTTP/1.1\r\nHost: x\r\n" + auth, 502, "http: rejected request other dial_failed"},
		{"refused", fmt.Sprintf("GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n", closed) + auth, 502, "http: rejected request other dial_failed"},
		{"connect port", "CONNECT 127.0.0.1:8443 HTTP/1.1\r\nHost: x\r\n" + auth, 403, "http: rejected connect other destination_denied"},
		{"connect denied", "CONNECT 10.1.2.3:443 HTTP/1.1\r\nHost: x\r\n" + auth, 403, "http: rejected connect other destination_denied"},
		{"https URI", "GET https://127.0.0.1/ HTTP/1.1\r\nHost: x\r\n" + auth, 400, "http: rejected none other protocol_error"},
		{"not found", "GET /index.html HTTP/1.1\r\nHost: x\r\n", 404, "http: rejected none other command_refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.rec.get(tc.result)
			if resp := roundTrip(t, h.addr, tc.request+"\r\n"); resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			waitFor(t, tc.result, func() bool { return h.rec.get(tc.result) == before+1 })
		})
	}
	// The user's one session is taken by a tunnel: the next request gets 429.
	target := startTarget(t, echo)
	tunnel := dialConnect(t, h.addr, target, auth)
	defer tunnel.Close()
	resp := roundTrip(t, h.addr, "CONNECT "+target+" HTTP/1.1\r\nHost: x\r\n"+auth+"\r\n")
	if resp.StatusCode != 429 {
		t.Errorf("over the user's session cap: %d, want 429", resp.StatusCode)
	}
}

// dialConnect opens a CONNECT tunnel to target with the given extra fields.
func dialConnect(t *testing.T, proxyAddr, target, fields string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", target, target, fields)
	want := "HTTP/1.1 200 Connection established\r\nVia: 1.1 sockshaper\r\n\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != want {
		t.Fatalf("CONNECT answer %q, %v", got, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

func TestHTTPKeepAliveServesManyRequestsOnOneConnection(t *testing.T) {
	h := newHarness(t, "")
	var conns atomic.Int32
	plain := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	plain.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	plain.Start()
	defer plain.Close()
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	auth := "Proxy-Authorization: " + basic("alice", testPassword) + "\r\n"
	for i := range 20 {
		fmt.Fprintf(c, "GET %s/r%d HTTP/1.1\r\nHost: x\r\n%s\r\n", plain.URL, i, auth)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("/r%d", i) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	waitFor(t, "20 sessions", func() bool { return h.rec.get("http: closed request other ok") == 20 })
	if n := conns.Load(); n != 1 {
		t.Errorf("origin saw %d connections for 20 requests to it, want 1 (reused)", n)
	}
	if n := h.srv.ActiveSessions(); n != 1 {
		t.Errorf("proxy connections: %d, want the one keep-alive connection", n)
	}
}

// TestHTTPDrainClosesIdleKeepAliveConnections: a shutdown closes a keep-alive
// connection waiting for its next request at once, instead of waiting the drain
// out for a request that may never come.
func TestHTTPDrainClosesIdleKeepAliveConnections(t *testing.T) {
	h := newHarness(t, "")
	plain := origin(t, false)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s/hello HTTP/1.1\r\nHost: x\r\nProxy-Authorization: %s\r\n\r\n", plain.URL, basic("alice", testPassword))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body)
	waitFor(t, "request ended", func() bool { return h.rec.get("http: closed request other ok") == 1 })
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v, want the idle connection closed before the drain ends", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("client read after shutdown: %v, want EOF", err)
	}
	if n := h.rec.get("reset shutdown"); n != 0 {
		t.Errorf("%d connections reset at shutdown, want none", n)
	}
}

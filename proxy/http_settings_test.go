package proxy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// closedAfter waits up to limit for the server to close c and returns how long
// it took from start; limit when it did not.
func closedAfter(t *testing.T, c net.Conn, br *bufio.Reader, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	c.SetReadDeadline(start.Add(limit))
	_, err := io.Copy(io.Discard, br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return limit
	}
	return time.Since(start)
}

// TestHTTPKeepAliveAndHandshakeTimeoutsApart sets http.keepalive and
// timeouts.handshake to values far apart, both ways round, and checks which one
// closes what: the wait for a next request ends at http.keepalive, a next
// request's head that stops midway at timeouts.handshake from its first byte.
// With both at one value (as other tests set them) one could stand for the
// other unnoticed.
func TestHTTPKeepAliveAndHandshakeTimeoutsApart(t *testing.T) {
	const short, long = time.Second, 4 * time.Second
	for _, tc := range []struct {
		name                 string
		keepalive, handshake time.Duration
	}{
		{"keepalive long, handshake short", long, short},
		{"keepalive short, handshake long", short, long},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, fmt.Sprintf("http: {keepalive: %v}\ntimeouts: {handshake: %v}", tc.keepalive, tc.handshake))
			plain := origin(t, false)
			request := "GET " + plain.URL + "/hello HTTP/1.1\r\nHost: x\r\nProxy-Authorization: " + basic("alice", testPassword) + "\r\n\r\n"

			// An idle connection after one answered request: closed by http.keepalive.
			idle, br := answeredOnce(t, h.addr, request)
			start := time.Now()
			if got := closedAfter(t, idle, br, start, tc.keepalive+3*time.Second); got < tc.keepalive-200*time.Millisecond || got > tc.keepalive+2*time.Second {
				t.Errorf("idle keep-alive connection closed after %v, want about http.keepalive (%v), not timeouts.handshake (%v)",
					got.Round(time.Millisecond), tc.keepalive, tc.handshake)
			}

			// A next head that stops midway: closed by timeouts.handshake, counted
			// from its first byte, whatever http.keepalive is.
			slow, br := answeredOnce(t, h.addr, request)
			time.Sleep(200 * time.Millisecond) // into the keep-alive wait
			io.WriteString(slow, "GET "+plain.URL+"/hello HTTP/1.1\r\nHo")
			start = time.Now()
			if got := closedAfter(t, slow, br, start, tc.handshake+3*time.Second); got < tc.handshake-200*time.Millisecond || got > tc.handshake+2*time.Second {
				t.Errorf("a stalled second head was cut after %v, want about timeouts.handshake (%v), not http.keepalive (%v)",
					got.Round(time.Millisecond), tc.handshake, tc.keepalive)
			}
		})
	}
}

// answeredOnce sends request on a new connection and reads its whole response,
// leaving the connection open.
func answeredOnce(t *testing.T, addr, request string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, request)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || err != nil || resp.Close {
		t.Fatalf("first request: %d %q, %v, close %v", resp.StatusCode, body, err, resp.Close)
	}
	c.SetDeadline(time.Time{})
	return c, br
}

// TestHTTPRealmFromConfig: the Proxy-Authenticate challenge names http.realm as
// configured, on a forwarded request and on a CONNECT, not the default.
func TestHTTPRealmFromConfig(t *testing.T) {
	const realm = "Campus proxy: log in/with your.campus-id_1"
	h := newHarness(t, fmt.Sprintf("http: {realm: %q}", realm))
	plain := origin(t, false)
	want := `Basic realm="` + realm + `", charset="UTF-8"`
	for _, req := range []string{
		"GET " + plain.URL + "/hello HTTP/1.1\r\nHost: x\r\n\r\n",
		"CONNECT " + strings.TrimPrefix(plain.URL, "http://") + " HTTP/1.1\r\nHost: x\r\nProxy-Authorization: " + basic("alice", "wrong") + "\r\n\r\n",
	} {
		resp := roundTrip(t, h.addr, req)
		if got := resp.Header.Get("Proxy-Authenticate"); resp.StatusCode != 407 || got != want {
			t.Errorf("%s: %d, Proxy-Authenticate %q; want 407 with %q", strings.Fields(req)[0], resp.StatusCode, got, want)
		}
	}
}

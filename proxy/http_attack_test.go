package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/proxy/auth"
)

// TestHTTPConcurrentGuessesStayWithinTheAllowance: 200 HTTP requests at once
// from one address, each with another password, check no more passwords than
// the allowance, as SOCKS5 logins do (one throttle for both fronts), and all
// get 407.
func TestHTTPConcurrentGuessesStayWithinTheAllowance(t *testing.T) {
	cfg := loadTestConfig(t, testConfig)
	users := &countingVerifier{Verifier: loadUsers(t, cfg)}
	h := startHarness(t, cfg, users)
	const guesses = 200
	var wg sync.WaitGroup
	var challenged atomic.Int64
	for i := range guesses {
		wg.Go(func() {
			c := dialFrom(t, h.addr, "127.0.3.2")
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(c, "CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: x\r\nProxy-Authorization: %s\r\n\r\n", basic("alice", fmt.Sprint("guess-", i)))
			line := make([]byte, 12)
			if _, err := io.ReadFull(c, line); err == nil && string(line) == "HTTP/1.1 407" {
				challenged.Add(1)
			}
		})
	}
	wg.Wait()
	if challenged.Load() != guesses {
		t.Errorf("%d of %d guesses answered 407", challenged.Load(), guesses)
	}
	waitFor(t, "every login counted", func() bool { return h.rec.get("auth failed")+h.rec.get("auth throttled") == guesses })
	if checked := users.calls.Load(); checked > 10 {
		t.Errorf("%d concurrent guesses over HTTP: %d passwords checked, want at most the allowance of 10", guesses, checked)
	}
	// SOCKS5 guesses from that address at that user are throttled too.
	if got, _ := login(t, h.addr, "127.0.3.2", "alice", "one more"); string(got) != string(loginFailed) {
		t.Errorf("SOCKS5 guess after the HTTP ones: %x", got)
	}
	if h.rec.get("auth throttled") < guesses-10 {
		t.Errorf("throttled %d", h.rec.get("auth throttled"))
	}
}

// TestHTTPSlowHeadsAreCut: a client that sends part of a head and stops is cut
// at the handshake deadline, on its first request and on a later one of a
// keep-alive connection; an idle keep-alive connection closes after
// http.keepalive; a head over 16 KiB gets 431.
func TestHTTPSlowHeadsAreCut(t *testing.T) {
	h := newHarness(t, "http: {keepalive: 1s}\ntimeouts: {handshake: 1s}")
	plain := origin(t, false)
	auth := "Proxy-Authorization: " + basic("alice", testPassword) + "\r\n"
	closedWithin := func(c net.Conn, d time.Duration) error {
		c.SetReadDeadline(time.Now().Add(d))
		_, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("still open after %v", d)
		}
		return nil
	}
	slow := func(first string) net.Conn {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, first)
		return c
	}
	if err := closedWithin(slow("GET "+plain.URL+"/hello HTTP/1.1\r\nHo"), 3*time.Second); err != nil {
		t.Errorf("slow first head: %v", err)
	}
	// A keep-alive connection: one request answered, then a head that stops.
	c := slow("GET " + plain.URL + "/hello HTTP/1.1\r\nHost: x\r\n" + auth + "\r\nGET " + plain.URL + "/hello HTTP/1.1\r\nHo")
	if err := closedWithin(c, 3*time.Second); err != nil {
		t.Errorf("slow second head: %v", err)
	}
	idle := slow("GET " + plain.URL + "/hello HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n")
	start := time.Now()
	if err := closedWithin(idle, 4*time.Second); err != nil || time.Since(start) < 900*time.Millisecond {
		t.Errorf("idle keep-alive connection: %v after %v, want closed after about 1s", err, time.Since(start))
	}
	big := slow("GET " + plain.URL + "/hello HTTP/1.1\r\nX: " + strings.Repeat("a", 17<<10) + "\r\n\r\n")
	big.SetReadDeadline(time.Now().Add(3 * time.Second))
	got, _ := io.ReadAll(big)
	if !strings.HasPrefix(string(got), "HTTP/1.1 431 ") {
		t.Errorf("a 17 KiB head: %q", got[:min(len(got), 40)])
	}
	waitFor(t, "timeouts logged", func() bool { return strings.Count(h.logs.String(), "close_reason=handshake_timeout") >= 2 })
}

// downVerifier is a directory that cannot be reached.
type downVerifier struct{}

func (downVerifier) Verify(context.Context, string, string) (auth.Identity, auth.Verdict, error) {
	return auth.Identity{}, auth.Unavailable, errors.New("directory down")
}

// TestHTTPDirectoryDownIs503: when logins cannot be checked, an HTTP client
// gets 503 with Retry-After, not a 407 that would make a browser ask again for,
// or forget, a password that may well be right; the attempt counts as
// unavailable and feeds no throttle.
func TestHTTPDirectoryDownIs503(t *testing.T) {
	cfg := loadTestConfig(t, testConfig)
	h := startHarness(t, cfg, downVerifier{})
	for range 12 { // more than the throttle's allowance of failures
		resp := roundTrip(t, h.addr, "GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: "+basic("alice", testPassword)+"\r\n\r\n")
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("directory down: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	waitFor(t, "attempts counted", func() bool { return h.rec.get("auth unavailable") == 12 })
	if n := h.rec.get("auth throttled") + h.rec.get("auth failed"); n != 0 {
		t.Errorf("%d attempts counted as failed or throttled", n)
	}
}

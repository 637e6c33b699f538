package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/shaping"
)

// dialVia connects to target through the proxy with golang.org/x/net/proxy.
func dialVia(t testing.TB, proxyAddr, user, target string) net.Conn {
	t.Helper()
	d, err := xproxy.SOCKS5("tcp", proxyAddr, &xproxy.Auth{User: user, Password: testPassword}, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial("tcp", target)
	if err != nil {
		t.Fatalf("dial %s via proxy: %v", target, err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// assertEcho checks a round trip through an echo target.
func assertEcho(t *testing.T, proxyAddr, user, target string) {
	t.Helper()
	c := dialVia(t, proxyAddr, user, target)
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo through proxy: got %q, %v", buf, err)
	}
}

func startTarget6(t *testing.T) string {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err == nil {
			echo(c)
			c.Close()
		}
	}()
	return ln.Addr().String()
}

// sendThenClose is a target that writes payload and closes at once.
func sendThenClose(payload []byte) func(net.Conn) {
	return func(c net.Conn) { c.Write(payload) }
}

func TestDownloadThenCloseArrivesWhole(t *testing.T) {
	payload := make([]byte, 8<<20)
	rand.Read(payload)
	want := sha256.Sum256(payload)
	fast := configs.Shaping{Global: configs.Limit{Upload: 1 << 30, Download: 1 << 30}}
	for _, tc := range []struct {
		name string
		opts []harnessOption
	}{
		{"unshaped zero-copy", nil},
		{"shaped", []harnessOption{withShaper(shaping.NewRegistry(fast))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "", tc.opts...)
			target := startTarget(t, sendThenClose(payload))
			c := dialVia(t, h.addr, "alice", target)
			got, err := io.ReadAll(c)
			c.Close() // the client's close ends the session: until then it may still send
			if err != nil {
				t.Fatalf("read after %d bytes: %v", len(got), err)
			}
			if len(got) != len(payload) || sha256.Sum256(got) != want {
				t.Fatalf("got %d bytes (sha differs: %v), want %d", len(got), sha256.Sum256(got) != want, len(payload))
			}
			waitFor(t, "byte count", func() bool { return h.rec.get("bytes other download tcp") == int64(len(payload)) })
			waitFor(t, "session close", func() bool { return h.rec.get("closed connect other ok") == 1 })
		})
	}
}

// rawConnect does the handshake by hand and returns the TCP connection, so a test
// can half-close it.
func rawConnect(t *testing.T, proxyAddr, target string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	host, port := splitHostPort(t, target)
	c.Write(cat(loggedIn(), requestMsg(1, host, port)))
	got := make([]byte, len(okAuth)+10)
	if _, err := io.ReadFull(c, got); err != nil || got[len(okAuth)+1] != replySucceeded {
		t.Fatalf("connect: reply %x, %v", got, err)
	}
	return c.(*net.TCPConn)
}

func TestUploadHalfClose(t *testing.T) {
	h := newHarness(t, "")
	// The target reads to EOF, then answers with the digest: only a passed-on
	// half-close lets it answer.
	target := startTarget(t, func(c net.Conn) {
		s := sha256.New()
		io.Copy(s, c)
		c.Write(s.Sum(nil))
	})
	payload := make([]byte, 3<<20)
	rand.Read(payload)
	c := rawConnect(t, h.addr, target)
	defer c.Close()
	go func() { c.Write(payload); c.CloseWrite() }()
	got, err := io.ReadAll(c)
	if want := sha256.Sum256(payload); err != nil || !bytes.Equal(got, want[:]) {
		t.Fatalf("digest %x, %v; want %x", got, err, want)
	}
}

func TestHandshakeTimeoutClosesSilentAndStalledClients(t *testing.T) {
	h := newHarness(t, "timeouts: {handshake: 300ms}\n")
	for name, send := range map[string][]byte{
		"silent":       nil,
		"stalled auth": cat(greetUserPass, []byte{1, 5, 'a'}),
	} {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(send)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Errorf("%s: server did not close within 5 s: %v", name, err)
		}
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("%s: closed after %v, before the 300ms deadline", name, d)
		}
	}
	waitFor(t, "sessions gone", func() bool { return h.srv.ActiveSessions() == 0 })
	if !strings.Contains(h.logs.String(), "handshake_timeout") {
		t.Errorf("log does not name the handshake timeout:\n%s", h.logs.String())
	}
}

func TestClientOutsideNetworksClosedBeforeReading(t *testing.T) {
	h := newHarness(t, "access: {client_networks: [127.0.0.2/32], deny_destinations: [127.0.0.3/32]}\n")
	c, err := net.Dial("tcp", h.addr) // from 127.0.0.1
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || len(got) != 0 {
		t.Fatalf("refused client got %x, %v; want an immediate close", got, err)
	}
	waitFor(t, "client_denied", func() bool { return h.rec.get("rejected none other client_denied") == 1 })

	// The same proxy serves a client inside the allowed network.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err = d.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(greetUserPass)
	reply := make([]byte, 2)
	if _, err := io.ReadFull(c, reply); err != nil || !bytes.Equal(reply, []byte{5, 2}) {
		t.Fatalf("allowed client: %x, %v", reply, err)
	}
}

func TestSessionLimits(t *testing.T) {
	h := newHarness(t, "limits: {max_sessions: 2, max_sessions_per_client_ip: 2, max_sessions_per_user: 1}\n")
	target := startTarget(t, echo)
	first := dialVia(t, h.addr, "alice", target)
	defer first.Close()
	// alice's second session: the per-user limit answers 0x02.
	host, port := splitHostPort(t, target)
	got := exchange(t, h.addr, cat(loggedIn(), requestMsg(1, host, port)))
	if want := cat(okAuth, failReply(replyNotAllowed)); !bytes.Equal(got, want) {
		t.Errorf("second session of alice: %x, want %x", got, want)
	}
	waitFor(t, "per-user limit", func() bool { return h.rec.get("rejected connect other limit_reached") == 1 })

	second := dialVia(t, h.addr, "bob", target) // second from 127.0.0.1: allowed
	defer second.Close()
	// The caps count established sessions, so they answer after the handshake:
	// the third from 127.0.0.1 is over its address's cap (0x02)...
	if got := exchange(t, h.addr, cat(loggedIn(), requestMsg(1, host, port))); !bytes.Equal(got, cat(okAuth, failReply(replyNotAllowed))) {
		t.Errorf("over the per-client limit: got %x, want 0x02", got)
	}
	// ...and one from another address is over the proxy's (0x01).
	c, err := dialerFrom("127.0.0.3").Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(cat(loggedIn(), requestMsg(1, host, port)))
	if got, _ := io.ReadAll(c); !bytes.Equal(got, cat(okAuth, failReply(replyGeneralFailure))) {
		t.Errorf("over max_sessions: got %x, want 0x01", got)
	}
	waitFor(t, "session limits", func() bool { return h.rec.get("rejected connect other limit_reached") == 3 })
	if n := h.srv.ActiveHandshakes(); n != 0 {
		t.Errorf("%d handshakes still held", n)
	}
	assertOpenSessionsStillWork(t, first, second)
}

func assertOpenSessionsStillWork(t *testing.T, conns ...net.Conn) {
	t.Helper()
	for i, c := range conns {
		c.Write([]byte("x"))
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Errorf("session %d broken: %v", i, err)
		}
	}
}

func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, "timeouts: {idle: 400ms}\n")
	target := startTarget(t, echo)
	c := dialVia(t, h.addr, "alice", target)
	defer c.Close()
	// Traffic keeps it open past the idle time...
	for range 4 {
		time.Sleep(150 * time.Millisecond)
		assertOpenSessionsStillWork(t, c)
	}
	// ...silence closes it.
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("idle session not closed: %v", err)
	}
	waitFor(t, "accounting line", func() bool { return strings.Contains(h.logs.String(), "close_reason=idle") })
}

// TestShutdownDrainsThenCloses checks that draining sessions keep working and that
// those still running when the drain ends are reset, not closed: a client must
// see a transfer cut by the drain as an error, never as a complete one.
func TestShutdownDrainsThenCloses(t *testing.T) {
	h := newHarness(t, "")
	target := startTarget(t, echo)
	c := dialVia(t, h.addr, "alice", target)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.srv.Shutdown(ctx) }()
	waitFor(t, "listener closed", func() bool {
		nc, err := net.Dial("tcp", h.addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	assertOpenSessionsStillWork(t, c) // draining sessions keep working
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v, want DeadlineExceeded after closing the session", err)
	}
	if _, err := io.ReadAll(c); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("session after the drain time: read error %v, want a reset", err)
	}
	waitFor(t, "accounting line", func() bool { return strings.Contains(h.logs.String(), "close_reason=shutdown") })
	if got := h.rec.get("reset shutdown"); got != 1 {
		t.Errorf("sessions reset for shutdown = %d, want 1", got)
	}
}

// splitHostPort splits a test address.
func splitHostPort(t *testing.T, addr string) (string, uint16) {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Addr().String(), ap.Port()
}

// dialViaProxy adapts the proxy to http.Transport.DialContext.
func dialViaProxy(t *testing.T, proxyAddr string) func(context.Context, string, string) (net.Conn, error) {
	d, err := xproxy.SOCKS5("tcp", proxyAddr, &xproxy.Auth{User: "alice", Password: testPassword}, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	return d.(xproxy.ContextDialer).DialContext
}

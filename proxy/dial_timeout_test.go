package proxy

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// unansweringTarget returns the address of a listening socket on 127.0.0.1
// that answers no SYN: its accept queue (backlog 0) is full, so Linux drops
// every new SYN and a dial to it hangs, as to a destination whose firewall
// drops, until the dialer gives up.
func unansweringTarget(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	// Fill the queue; the last dial checks that it is full.
	for i := range 4 {
		c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() && i > 0 {
			return addr
		}
		t.Fatalf("filling the accept queue of %s: dial %d: %v", addr, i, err)
	}
	t.Fatalf("%s still accepts connections with a full backlog: the dial timeout cannot be tested", addr)
	return ""
}

// dialTimeoutWindow is how long after its request a client may wait for the
// refusal of a destination that does not answer, with timeouts.dial at 1 s and
// timeouts.handshake at 10 s: the dial timeout, with room for a loaded machine,
// and well short of the handshake deadline that would otherwise end the wait.
const dialTimeoutWindow = 4 * time.Second

const dialTimeoutConfig = "timeouts: {dial: 1s, handshake: 10s}"

// TestDialTimeoutSOCKS5: a CONNECT to a destination that does not answer gets
// reply 0x04 (host unreachable) once timeouts.dial has passed, not later, and
// the dial counts as failed.
func TestDialTimeoutSOCKS5(t *testing.T) {
	h := newHarness(t, dialTimeoutConfig)
	target := unansweringTarget(t)
	_, port := splitHostPort(t, target)
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	c.Write(loggedIn())
	if got := readN(t, c, 4); string(got) != string(okAuth) {
		t.Fatalf("login: %x", got)
	}
	start := time.Now()
	c.Write(requestMsg(1, "127.0.0.1", port))
	got := readN(t, c, 10)
	took := time.Since(start)
	if string(got) != string(failReply(replyHostUnreachable)) {
		t.Errorf("reply %x, want %x (host unreachable)", got, failReply(replyHostUnreachable))
	}
	if took < 900*time.Millisecond || took > dialTimeoutWindow {
		t.Errorf("refused after %v, want about timeouts.dial (1s), well before the handshake deadline (10s)", took.Round(time.Millisecond))
	}
	waitFor(t, "failed dial counted", func() bool { return h.rec.get("dial failed") == 1 })
}

// TestDialTimeoutHTTP: over the HTTP front the same destination gets 504 once
// timeouts.dial has passed, for a CONNECT and for a forwarded request.
func TestDialTimeoutHTTP(t *testing.T) {
	h := newHarness(t, dialTimeoutConfig)
	target := unansweringTarget(t)
	auth := "Proxy-Authorization: " + basic("alice", testPassword) + "\r\n"
	for _, req := range []string{
		"CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n" + auth + "\r\n",
		"GET http://" + target + "/ HTTP/1.1\r\nHost: " + target + "\r\n" + auth + "\r\n",
	} {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(15 * time.Second))
		start := time.Now()
		io.WriteString(c, req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		took := time.Since(start)
		if err != nil {
			t.Fatalf("%.7s: %v after %v", req, err, took)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("%.7s: status %d, want 504", req, resp.StatusCode)
		}
		if took < 900*time.Millisecond || took > dialTimeoutWindow {
			t.Errorf("%.7s: answered after %v, want about timeouts.dial (1s), well before the handshake deadline (10s)", req, took.Round(time.Millisecond))
		}
	}
	waitFor(t, "failed dials counted", func() bool { return h.rec.get("dial failed") == 2 })
}

// readN reads exactly n bytes.
func readN(t *testing.T, c net.Conn, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %x)", n, err, b)
	}
	return b
}

package proxy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"
)

// greetUserPass is a greeting offering only RFC 1929 username/password.
var greetUserPass = []byte{5, 1, 2}

// loginMsg builds an RFC 1929 request.
func loginMsg(user, pass string) []byte {
	b := []byte{1, byte(len(user))}
	b = append(append(b, user...), byte(len(pass)))
	return append(b, pass...)
}

// requestMsg builds a SOCKS5 request for host (an IP or a name) and port.
func requestMsg(cmd byte, host string, port uint16) []byte {
	b := []byte{5, cmd, 0}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		b = append(append(b, atypIPv4), a.AsSlice()...)
	} else if err == nil {
		b = append(append(b, atypIPv6), a.AsSlice()...)
	} else {
		b = append(append(b, atypDomain, byte(len(host))), host...)
	}
	return binary.BigEndian.AppendUint16(b, port)
}

// loggedIn is what a client writes to get past authentication as alice.
func loggedIn() []byte {
	return append(append([]byte{}, greetUserPass...), loginMsg("alice", testPassword)...)
}

// okAuth is what the server answers to loggedIn.
var okAuth = []byte{5, 2, 1, 0}

// exchange writes msg, reads until the server closes, and returns what came back.
func exchange(t *testing.T, addr string, msg []byte) []byte {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	// A half-close makes a short message fail at once instead of at the handshake
	// deadline; a complete one is unaffected.
	c.(*net.TCPConn).CloseWrite()
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection; got %x so far", got)
	}
	return got
}

// failReply is a reply with code and BND 0.0.0.0:0.
func failReply(code byte) []byte { return []byte{5, code, 0, atypIPv4, 0, 0, 0, 0, 0, 0} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestProtocolRepliesAndCloses(t *testing.T) {
	h := newHarness(t, "")
	closed := closedPort(t)
	tests := []struct {
		name   string
		send   []byte
		want   []byte
		result string // the sessions_total result recorded
	}{
		{"socks4 greeting", []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, nil, "rejected none other protocol_error"},
		{"tls to the proxy port", []byte{0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0}, nil, "none: rejected none other protocol_error"},
		{"no acceptable method", []byte{5, 1, 0}, []byte{5, 0xFF}, "rejected none other auth_failed"},
		{"zero methods", []byte{5, 0}, []byte{5, 0xFF}, "rejected none other auth_failed"},
		{"truncated greeting", []byte{5, 3, 2}, nil, "rejected none other protocol_error"},
		{"auth version 5", cat(greetUserPass, []byte{5, 5, 'a'}), []byte{5, 2}, "rejected none other protocol_error"},
		{"wrong password", cat(greetUserPass, loginMsg("alice", "nope")), []byte{5, 2, 1, 1}, "rejected none other auth_failed"},
		{"unknown user", cat(greetUserPass, loginMsg("mallory", testPassword)), []byte{5, 2, 1, 1}, "rejected none other auth_failed"},
		{"empty user", cat(greetUserPass, loginMsg("", "")), []byte{5, 2, 1, 1}, "rejected none other auth_failed"},
		{"unknown command", cat(loggedIn(), requestMsg(9, "127.0.0.1", 80)), cat(okAuth, failReply(replyCommandNotSupported)), "rejected none other command_refused"},
		{"unknown address type", cat(loggedIn(), []byte{5, 1, 0, 7, 1, 2, 3, 4, 0, 80}), cat(okAuth, failReply(replyAddrTypeUnsupported)), "rejected connect other protocol_error"},
		{"request version 4", cat(loggedIn(), []byte{4, 1, 0, 1, 1, 2, 3, 4, 0, 80}), cat(okAuth, failReply(replyGeneralFailure)), "rejected none other protocol_error"},
		{"truncated request", cat(loggedIn(), []byte{5, 1, 0, 1, 127, 0}), okAuth, "rejected connect other protocol_error"},
		{"empty name", cat(loggedIn(), []byte{5, 1, 0, 3, 0, 0, 80}), cat(okAuth, failReply(replyHostUnreachable)), "rejected connect other protocol_error"},
		{"bind refused", cat(loggedIn(), requestMsg(2, "127.0.0.1", 80)), cat(okAuth, failReply(replyNotAllowed)), "rejected bind other command_refused"},
		{"denied address", cat(loggedIn(), requestMsg(1, "127.0.0.2", 80)), cat(okAuth, failReply(replyNotAllowed)), "rejected connect other destination_denied"},
		{"denied private", cat(loggedIn(), requestMsg(1, "10.1.2.3", 80)), cat(okAuth, failReply(replyNotAllowed)), "rejected connect other destination_denied"},
		{"denied mapped ipv6", cat(loggedIn(), requestMsg(1, "::ffff:10.0.0.1", 80)), cat(okAuth, failReply(replyNotAllowed)), "rejected connect other destination_denied"},
		{"name resolving to denied", cat(loggedIn(), requestMsg(1, "denied.test", 80)), cat(okAuth, failReply(replyNotAllowed)), "rejected connect other destination_denied"},
		{"unresolvable name", cat(loggedIn(), requestMsg(1, "nowhere.test", 80)), cat(okAuth, failReply(replyHostUnreachable)), "rejected connect other dial_failed"},
		{"connection refused", cat(loggedIn(), requestMsg(1, "127.0.0.1", closed)), cat(okAuth, failReply(replyConnectionRefused)), "rejected connect other dial_failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.rec.get(tc.result)
			got := exchange(t, h.addr, tc.send)
			if !bytes.Equal(got, tc.want) {
				t.Errorf("server sent %x, want %x", got, tc.want)
			}
			waitFor(t, "result "+tc.result, func() bool { return h.rec.get(tc.result) == before+1 })
		})
	}
	if n := h.rec.get("inbound bind"); n != 1 {
		t.Errorf("inbound bind refusals = %d, want 1", n)
	}
	// After all of that the server still serves.
	target := startTarget(t, echo)
	assertEcho(t, h.addr, "alice", target)
}

// closedPort returns a port on 127.0.0.1 with no listener.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port)
}

func TestConnectReplyCarriesBoundAddress(t *testing.T) {
	h := newHarness(t, "")
	target := startTarget(t, echo)
	host, portStr, _ := net.SplitHostPort(target)
	port, _ := strconv.Atoi(portStr)
	for _, dest := range []string{host, "localhost.test"} {
		c, err := net.Dial("tcp", h.addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(cat(loggedIn(), requestMsg(1, dest, uint16(port))))
		got := make([]byte, len(okAuth)+10)
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatalf("%s: %v", dest, err)
		}
		reply := got[len(okAuth):]
		if reply[1] != replySucceeded || reply[3] != atypIPv4 {
			t.Fatalf("%s: reply %x, want success with an IPv4 bound address", dest, reply)
		}
		bound := netip.AddrPortFrom(netip.AddrFrom4([4]byte(reply[4:8])), binary.BigEndian.Uint16(reply[8:]))
		if bound.Addr() != netip.MustParseAddr("127.0.0.1") || bound.Port() == 0 {
			t.Errorf("%s: bound address %v, want 127.0.0.1 and the proxy's real port", dest, bound)
		}
		c.Write([]byte("ping"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
			t.Errorf("%s: echo got %q, %v", dest, buf, err)
		}
		c.Close()
	}
}

func TestDefaultDenyListRefusesLoopback(t *testing.T) {
	h := newHarness(t, "access: {deny_destinations: [loopback, private, link-local, metadata]}\n")
	target := startTarget(t, echo)
	_, port := splitHostPort(t, target)
	for _, dest := range []string{"127.0.0.1", "::1", "0.0.0.0", "169.254.169.254", "192.168.1.1", "localhost.test"} {
		got := exchange(t, h.addr, cat(loggedIn(), requestMsg(1, dest, port)))
		if want := cat(okAuth, failReply(replyNotAllowed)); !bytes.Equal(got, want) {
			t.Errorf("CONNECT %s: got %x, want %x", dest, got, want)
		}
	}
}

func TestIPv6Connect(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil && os.Getenv("CI") != "" {
		t.Fatalf("no IPv6 loopback, so IPv6 CONNECT goes untested: %v", err)
	} else if err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	ln.Close()
	h := newHarness(t, "")
	target := startTarget6(t)
	assertEcho(t, h.addr, "bob", target)
}

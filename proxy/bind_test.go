package proxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"
)

// readReply reads one reply with an IPv4 bound address.
func readReply(t *testing.T, c net.Conn) (byte, netip.AddrPort) {
	t.Helper()
	r := make([]byte, 10)
	if _, err := io.ReadFull(c, r); err != nil {
		t.Fatalf("reply: %v", err)
	}
	return r[1], netip.AddrPortFrom(netip.AddrFrom4([4]byte(r[4:8])), binary.BigEndian.Uint16(r[8:]))
}

// With access.bind on (an operator's explicit choice), BIND works as RFC 1928 says:
// a first reply with the listening address, a second with the peer's, then a relay.
// Only the expected peer may connect.
func TestBindWhenEnabled(t *testing.T) {
	h := newHarness(t, "access: {bind: true}\n")
	c, err := net.Dial("tcp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write(cat(loggedIn(), requestMsg(2, "127.0.0.1", 0)))
	auth := make([]byte, len(okAuth))
	if _, err := io.ReadFull(c, auth); err != nil || !bytes.Equal(auth, okAuth) {
		t.Fatalf("auth %x, %v", auth, err)
	}
	code, listening := readReply(t, c)
	if code != replySucceeded || listening.Port() == 0 {
		t.Fatalf("first BIND reply %d %v", code, listening)
	}
	// A stranger from another address is turned away and counted.
	stranger := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}
	if s, err := stranger.Dial("tcp", listening.String()); err == nil {
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.ReadAll(s)
		s.Close()
	}
	waitFor(t, "stranger refused", func() bool { return h.rec.get("inbound bind") == 1 })
	peer, err := net.Dial("tcp", listening.String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	code, from := readReply(t, c)
	if code != replySucceeded || from.String() != peer.LocalAddr().String() {
		t.Fatalf("second BIND reply %d from %v, want the peer %v", code, from, peer.LocalAddr())
	}
	peer.Write([]byte("inbound"))
	got := make([]byte, 7)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "inbound" {
		t.Fatalf("relay: %q, %v", got, err)
	}
}

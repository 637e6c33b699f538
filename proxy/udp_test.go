package proxy

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// udpClient is a SOCKS5 client with one association: the control connection,
// its UDP socket and the relay address from the reply.
type udpClient struct {
	t     testing.TB
	ctl   net.Conn
	udp   *net.UDPConn
	relay netip.AddrPort
}

// associateUDP logs in as alice from a new UDP socket on 127.0.0.1 and asks for
// an association; namePort says whether the request names the socket's port or
// sends 0.0.0.0:0.
func associateUDP(t testing.TB, proxyAddr string, namePort bool) *udpClient {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	ctl, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	ctl.SetDeadline(time.Now().Add(5 * time.Second))
	host, port := "0.0.0.0", uint16(0)
	if namePort {
		host, port = "127.0.0.1", tunnel.AddrPortOf(udp.LocalAddr()).Port()
	}
	ctl.Write(cat(loggedIn(), requestMsg(3, host, port)))
	got := make([]byte, len(okAuth)+10)
	if _, err := io.ReadFull(ctl, got); err != nil {
		t.Fatalf("associate: %x, %v", got, err)
	}
	reply := got[len(okAuth):]
	if reply[1] != replySucceeded || reply[3] != atypIPv4 {
		t.Fatalf("associate reply %x, want success with an IPv4 address", reply)
	}
	ctl.SetDeadline(time.Time{})
	relay := netip.AddrPortFrom(netip.AddrFrom4([4]byte(reply[4:8])), uint16(reply[8])<<8|uint16(reply[9]))
	return &udpClient{t: t, ctl: ctl, udp: udp, relay: relay}
}

// send sends payload to host (an IPv4 address or a name) and port via the relay.
func (c *udpClient) send(host string, port uint16, payload string) {
	c.t.Helper()
	msg := requestMsg(0, host, port)
	msg[0], msg[1] = 0, 0
	c.sendRaw(append(msg, payload...))
}

func (c *udpClient) sendRaw(msg []byte) {
	c.t.Helper()
	if _, err := c.udp.WriteToUDPAddrPort(msg, c.relay); err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next datagram within wait, with its payload copied out, and
// false when none came.
func (c *udpClient) recv(wait time.Duration) (datagram, bool) {
	c.t.Helper()
	buf := make([]byte, 64<<10)
	c.udp.SetReadDeadline(time.Now().Add(wait))
	n, from, err := c.udp.ReadFromUDPAddrPort(buf)
	if err != nil {
		return datagram{}, false
	}
	if from != c.relay {
		c.t.Fatalf("datagram from %v, not from the relay %v", from, c.relay)
	}
	d, err := parseDatagram(buf[:n])
	if err != nil {
		c.t.Fatalf("relay sent a bad header: %x: %v", buf[:n], err)
	}
	d.payload = bytes.Clone(d.payload)
	return d, true
}

// expectEcho sends payload to the echo server and checks that it comes back with
// the server's address in the header.
func (c *udpClient) expectEcho(e *udpEcho, host, payload string) {
	c.t.Helper()
	c.send(host, e.addr.Port(), payload)
	d, ok := c.recv(5 * time.Second)
	if !ok || string(d.payload) != payload || netip.AddrPortFrom(d.addr, d.port) != e.addr {
		c.t.Fatalf("echo via %s: got %q from %v:%d (%v), want %q from %v", host, d.payload, d.addr, d.port, ok, payload, e.addr)
	}
}

// expectNothing checks that no datagram arrives for a while.
func (c *udpClient) expectNothing(why string) {
	c.t.Helper()
	if d, ok := c.recv(300 * time.Millisecond); ok {
		c.t.Fatalf("%s: got %q from %v:%d", why, d.payload, d.addr, d.port)
	}
}

// udpEcho is a UDP server on a loopback address that sends every datagram back.
type udpEcho struct {
	conn *net.UDPConn
	addr netip.AddrPort
	got  atomic.Int64 // datagrams received
}

func startUDPEcho(t testing.TB, ip string) *udpEcho {
	t.Helper()
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	return serveUDPEcho(t, conn)
}

// serveUDPEcho echoes every datagram conn receives until the test ends.
func serveUDPEcho(t testing.TB, conn *net.UDPConn) *udpEcho {
	e := &udpEcho{conn: conn, addr: tunnel.AddrPortOf(conn.LocalAddr())}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			e.got.Add(1)
			conn.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return e
}

// sendFrom sends msg to the relay from a new socket on ip, as a stranger would.
func sendFrom(t *testing.T, ip string, to netip.AddrPort, msgs ...[]byte) {
	t.Helper()
	s, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, m := range msgs {
		s.WriteToUDPAddrPort(m, to)
	}
}

// udpMsg builds a client datagram to an IPv4 address.
func udpMsg(to netip.AddrPort, payload string) []byte {
	return appendDatagram(nil, datagram{addr: to.Addr(), port: to.Port(), payload: []byte(payload)})
}

func TestUDPAssociateRelaysDatagrams(t *testing.T) {
	h := newHarness(t, "")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	if c.relay.Addr() != netip.MustParseAddr("127.0.0.1") || c.relay.Port() == 0 {
		t.Fatalf("relay address %v, want 127.0.0.1 and a real port", c.relay)
	}
	c.expectEcho(echo, "127.0.0.1", "by address")
	c.expectEcho(echo, "localhost.test", "by name") // the header names the peer's address
	c.ctl.Close()
	waitFor(t, "session close", func() bool { return h.rec.get("closed udp_associate other ok") == 1 })
	if up, down := h.rec.get("bytes other upload udp"), h.rec.get("bytes other download udp"); up != 17 || down != 17 {
		t.Errorf("bytes up %d down %d, want 17 each (payloads only)", up, down)
	}
	logs := h.logs.String()
	for _, want := range []string{"command=udp_associate", "bytes_up=17", "close_reason=eof", "dialled=127.0.0.1:"} {
		if !strings.Contains(logs, want) {
			t.Errorf("accounting line lacks %q:\n%s", want, logs)
		}
	}
}

func TestUDPClassifiesEachDatagram(t *testing.T) {
	resolver := staticResolver{"media.skype.test": {netip.MustParseAddr("127.0.0.1")}}
	h := newHarness(t, "apps: {skype: {domains: [skype.test]}}\n", withResolver(resolver))
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	c.expectEcho(echo, "media.skype.test", "call")
	c.ctl.Close()
	// Bytes carry the datagram's class, and the answer the class of the
	// destination it answers for; the session takes the class of its bytes.
	waitFor(t, "session close", func() bool { return h.rec.get("closed udp_associate skype ok") == 1 })
	if up, down := h.rec.get("bytes skype upload udp"), h.rec.get("bytes skype download udp"); up != 4 || down != 4 {
		t.Errorf("skype bytes up %d down %d, want 4 each", up, down)
	}
}

func TestUDPDeniedDestinations(t *testing.T) {
	h := newHarness(t, "")
	denied := startUDPEcho(t, "127.0.0.2")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	c.send("127.0.0.2", denied.addr.Port(), "to a denied address")
	c.send("denied.test", denied.addr.Port(), "to a name resolving to it")
	c.send("nowhere.test", denied.addr.Port(), "to no address")
	c.send("127.0.0.1", 0, "to port zero")
	c.expectNothing("denied destinations")
	if n := denied.got.Load(); n != 0 {
		t.Errorf("the denied server received %d datagrams", n)
	}
	c.expectEcho(echo, "127.0.0.1", "still relaying")
	if !strings.Contains(h.logs.String(), "udp destination denied") {
		t.Errorf("no log line for the denied destination:\n%s", h.logs.String())
	}
}

// TestUDPSupernodeStrangersDropped checks the property SKYPE.md asks for: once the
// client has talked to a peer, nobody else reaches the client through the relay.
func TestUDPSupernodeStrangersDropped(t *testing.T) {
	h := newHarness(t, "")
	peerA := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	c.expectEcho(peerA, "127.0.0.1", "hello A")
	// B shares A's address (and the client's) but not A's port; C is elsewhere.
	// One of B's datagrams is a client request in disguise, asking for A.
	sendFrom(t, "127.0.0.1", c.relay, []byte("unsolicited"), udpMsg(peerA.addr, "spoofed client"))
	sendFrom(t, "127.0.0.3", c.relay, []byte("presence lookup"), udpMsg(c.udp.LocalAddr().(*net.UDPAddr).AddrPort(), "x"))
	c.expectNothing("strangers reached the client")
	waitFor(t, "refusals counted", func() bool { return h.rec.get("inbound udp_unsolicited") == 4 })
	if n := peerA.got.Load(); n != 1 {
		t.Errorf("peer A received %d datagrams, want only the client's one", n)
	}
	c.expectEcho(peerA, "127.0.0.1", "A still answers")
}

func TestUDPNamedClientPortIsEnforced(t *testing.T) {
	h := newHarness(t, "")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, true)
	// Another port of the client's own address, before and after the client's
	// first datagram: neither is the port the request named.
	sendFrom(t, "127.0.0.1", c.relay, udpMsg(echo.addr, "other port first"))
	c.expectEcho(echo, "127.0.0.1", "named port")
	sendFrom(t, "127.0.0.1", c.relay, udpMsg(echo.addr, "other port after"))
	c.expectNothing("other port")
	waitFor(t, "refusals counted", func() bool { return h.rec.get("inbound udp_unsolicited") == 2 })
	if n := echo.got.Load(); n != 1 {
		t.Errorf("echo received %d datagrams, want the named port's only", n)
	}
}

func TestUDPBadDatagramsDropped(t *testing.T) {
	h := newHarness(t, "")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	frag := udpMsg(echo.addr, "fragment")
	frag[2] = 1
	for _, m := range [][]byte{frag, {0, 0}, {0, 0, 0, 9, 1, 2, 3, 4, 0, 80}, {0, 0, 0, atypDomain, 0, 0, 80}, {0, 0, 0, atypIPv4, 127}} {
		c.sendRaw(m)
	}
	c.expectNothing("bad datagrams")
	if n := echo.got.Load(); n != 0 {
		t.Errorf("echo received %d bad datagrams", n)
	}
	c.expectEcho(echo, "127.0.0.1", "still relaying")
	c.ctl.Close()
	waitFor(t, "drop summary", func() bool { return strings.Contains(h.logs.String(), "bad_header=5") })
	if n := h.rec.get("inbound udp_unsolicited"); n != 0 {
		t.Errorf("the client's bad datagrams counted as %d unsolicited", n)
	}
}

package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	xproxy "golang.org/x/net/proxy"
)

// deniedForms are destinations the default deny list refuses, written as
// literals and reached through names, each in a different disguise.
var deniedForms = []string{
	"224.0.0.1", "239.255.255.250", "255.255.255.255", "0.0.0.0", "0.1.2.3",
	"ff02::1", "::127.0.0.1", "::ffff:0:127.0.0.1", "::ffff:224.0.0.1",
	"64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::7f00:1", "64:ff9b:1:7f00:0:100::",
	"2002:7f00:1::", "2002:a9fe:a9fe::1", "2001:0:7f00:1::", "2001:0:808:808:0:ffff:80ff:fffe",
}

// defaultDenyList is the deny list of the embedded default config.
const defaultDenyList = "access: {deny_destinations: [loopback, private, link-local, metadata, multicast, broadcast]}\n"

// TestConnectDeniedForms sends a CONNECT for each form over a raw socket and
// through golang.org/x/net/proxy: each is refused with 0x02 before any dial,
// whether the request names the address or a name resolving to it.
func TestConnectDeniedForms(t *testing.T) {
	names := staticResolver{}
	for i, a := range deniedForms {
		names["form"+strconv.Itoa(i)+".test"] = []netip.Addr{netip.MustParseAddr(a)}
	}
	h := newHarness(t, defaultDenyList, withResolver(names))
	want := cat(okAuth, failReply(replyNotAllowed))
	for i, a := range deniedForms {
		for _, dest := range []string{a, "form" + strconv.Itoa(i) + ".test"} {
			if got := exchange(t, h.addr, cat(loggedIn(), requestMsg(1, dest, 443))); !bytes.Equal(got, want) {
				t.Errorf("CONNECT %s (%s): got %x, want %x", dest, a, got, want)
			}
		}
	}
	d, err := xproxy.SOCKS5("tcp", h.addr, &xproxy.Auth{User: "alice", Password: testPassword}, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"[64:ff9b::7f00:1]:80", "224.0.0.1:80", "[2002:7f00:1::]:80"} {
		if c, err := d.Dial("tcp", a); err == nil || !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("x/net/proxy Dial(%s) = %v, %v; want a not-allowed error", a, c, err)
			if c != nil {
				c.Close()
			}
		}
	}
	wantRefused := int64(2*len(deniedForms) + 3)
	waitFor(t, "refusals counted", func() bool {
		return h.rec.get("rejected connect other destination_denied") == wantRefused
	})
	if n := h.rec.get("dial ok") + h.rec.get("dial failed"); n != 0 {
		t.Errorf("%d dials for denied destinations, want none", n)
	}
}

// TestConnectOwnAddressRefused: with loopback allowed, a CONNECT to the proxy's
// own listener (by address or by name) and to an address added with AddOwnAddr
// is refused, while other loopback targets stay reachable.
func TestConnectOwnAddressRefused(t *testing.T) {
	h := newHarness(t, "")
	_, port := splitHostPort(t, h.addr)
	admin := startTarget(t, echo)
	assertEcho(t, h.addr, "alice", admin) // allowed until the server learns it
	h.srv.AddOwnAddr(netip.MustParseAddrPort(admin))
	adminIP, adminPort := splitHostPort(t, admin)
	want := cat(okAuth, failReply(replyNotAllowed))
	for _, dest := range []struct {
		host string
		port uint16
	}{{"127.0.0.1", port}, {"localhost.test", port}, {"::ffff:0:127.0.0.1", port}, {adminIP, adminPort}} {
		if got := exchange(t, h.addr, cat(loggedIn(), requestMsg(1, dest.host, dest.port))); !bytes.Equal(got, want) {
			t.Errorf("CONNECT %s:%d: got %x, want %x", dest.host, dest.port, got, want)
		}
	}
	assertEcho(t, h.addr, "alice", startTarget(t, echo))
}

// TestConnectOwnWildcardListenerRefused: a proxy listening on every address
// refuses every local address at its port, loopback of both families and the
// host's other addresses.
func TestConnectOwnWildcardListenerRefused(t *testing.T) {
	h := newHarness(t, "")
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ln) }()
	t.Cleanup(func() {
		h.srv.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	dests := []string{"127.0.0.1", "127.1.2.3", "::1"}
	for _, a := range interfaceAddrs(t) {
		dests = append(dests, a.String())
	}
	want := cat(okAuth, failReply(replyNotAllowed))
	for _, dest := range dests {
		if got := exchange(t, h.addr, cat(loggedIn(), requestMsg(1, dest, port))); !bytes.Equal(got, want) {
			t.Errorf("CONNECT %s:%d to the wildcard listener: got %x, want %x", dest, port, got, want)
		}
	}
}

// TestUDPDeniedForms sends datagrams to each disguise of a denied destination
// (multicast, broadcast, embedded loopback and metadata, the proxy's own port),
// by address and by name: none leaves, each is counted as denied, and the
// association goes on relaying.
func TestUDPDeniedForms(t *testing.T) {
	names := staticResolver{
		"mcast.test":  {netip.MustParseAddr("224.0.0.1")},
		"nat64.test":  {netip.MustParseAddr("64:ff9b::7f00:2")},
		"teredo.test": {netip.MustParseAddr("2001:0:a9fe:a9fe::")},
		"proxy.test":  {netip.MustParseAddr("127.0.0.1")},
	}
	h := newHarness(t, "access: {deny_destinations: [private, link-local, metadata, multicast, broadcast, 127.0.0.2/32]}\n", withResolver(names))
	_, ownPort := splitHostPort(t, h.addr)
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	c.expectEcho(echo, "127.0.0.1", "first")
	sent := 0
	for _, dst := range []struct {
		host string
		port uint16
	}{
		{"224.0.0.1", 5353}, {"255.255.255.255", 67}, {"239.255.255.250", 1900}, {"::ffff:224.0.0.1", 9},
		{"::127.0.0.2", 9}, {"::ffff:0:127.0.0.2", 9}, {"64:ff9b::7f00:2", 9}, {"64:ff9b::a9fe:a9fe", 80},
		{"2002:7f00:2::", 9}, {"2001:0:7f00:2::", 9}, {"ff02::1", 9},
		{"127.0.0.1", ownPort}, {"::ffff:0:127.0.0.1", ownPort},
		{"mcast.test", 9}, {"nat64.test", 9}, {"teredo.test", 9}, {"proxy.test", ownPort},
	} {
		c.send(dst.host, dst.port, "to "+dst.host)
		sent++
	}
	c.expectNothing("denied destinations")
	c.expectEcho(echo, "127.0.0.1", "still relaying")
	c.ctl.Close()
	want := "denied=" + strconv.Itoa(sent) + " shaped=0 send_failed=0"
	waitFor(t, "drop summary", func() bool { return strings.Contains(h.logs.String(), want) })
	if n := echo.got.Load(); n != 2 {
		t.Errorf("echo received %d datagrams, want 2", n)
	}
}

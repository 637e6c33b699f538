package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	proxyproto "github.com/pires/go-proxyproto"
)

// balancedConfig trusts 127.0.0.5 as a load balancer and lets only 127.0.0.8 be
// a client, so that a client's address can only have come from a header.
const balancedConfig = `
access:
  client_networks: ["127.0.0.8/32"]
  proxy_protocol: {trusted: ["127.0.0.5/32"]}
`

// proxyHeader is a PROXY header of version v from client to the proxy at addr.
func proxyHeader(t *testing.T, v byte, client, addr string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(v, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(client)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchangeFrom connects from source, writes msg, and returns what came back
// until the proxy closed the connection.
func exchangeFrom(t *testing.T, source, addr string, msg []byte) []byte {
	t.Helper()
	c := dialFrom(t, addr, source)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(msg)
	c.(*net.TCPConn).CloseWrite()
	got, _ := io.ReadAll(c)
	return got
}

func TestProxyProtocolNamesTheClient(t *testing.T) {
	h := newHarness(t, balancedConfig)
	target := startTarget(t, echo)
	host, port := splitHostPort(t, target)
	request := cat(loggedIn(), requestMsg(1, host, port), []byte("ping"))
	want := cat(okAuth, []byte{5, 0, 0, 1})
	for _, v := range []byte{1, 2} {
		got := exchangeFrom(t, "127.0.0.5", h.addr, cat(proxyHeader(t, v, "127.0.0.8:4000", h.addr), request))
		if !bytes.HasPrefix(got, want) || !bytes.HasSuffix(got, []byte("ping")) {
			t.Fatalf("version %d: CONNECT through the balancer answered %x", v, got)
		}
	}
	waitFor(t, "accounting lines", func() bool { return strings.Count(h.logs.String(), "client=127.0.0.8:4000") == 2 })

	// A client the header names outside client_networks is refused, although
	// the balancer is trusted.
	if got := exchangeFrom(t, "127.0.0.5", h.addr, cat(proxyHeader(t, 2, "127.0.0.9:4000", h.addr), request)); len(got) != 0 {
		t.Errorf("client 127.0.0.9 through the balancer got %x, want a close", got)
	}
	waitFor(t, "client refused", func() bool { return strings.Contains(h.logs.String(), "client=127.0.0.9:4000 reason=client_denied") })
}

func TestProxyProtocolRefusals(t *testing.T) {
	h := newHarness(t, balancedConfig+"timeouts: {handshake: 1s}\n")
	header := proxyHeader(t, 2, "127.0.0.8:4000", h.addr)
	// From an address that is not a trusted balancer, a header is a protocol
	// error: a client cannot choose its own address.
	if got := exchangeFrom(t, "127.0.0.8", h.addr, cat(header, loggedIn())); len(got) != 0 {
		t.Errorf("a client's own PROXY header got %x, want a close", got)
	}
	waitFor(t, "untrusted header logged", func() bool {
		return strings.Contains(h.logs.String(), "PROXY header from an address not in access.proxy_protocol.trusted")
	})
	// From the balancer, a connection without a header is refused.
	if got := exchangeFrom(t, "127.0.0.5", h.addr, loggedIn()); len(got) != 0 {
		t.Errorf("the balancer without a header got %x, want a close", got)
	}
	waitFor(t, "missing header logged", func() bool { return strings.Contains(h.logs.String(), "did not start with a PROXY header") })
	waitFor(t, "both protocol errors counted", func() bool { return h.rec.get("rejected none other protocol_error") == 2 })
	// A LOCAL header (a health check) is closed quietly: no error, no session.
	local, err := (&proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}).Format()
	if err != nil {
		t.Fatal(err)
	}
	if got := exchangeFrom(t, "127.0.0.5", h.addr, local); len(got) != 0 {
		t.Errorf("a LOCAL header got %x, want a close", got)
	}
	time.Sleep(100 * time.Millisecond)
	if got := h.rec.get("rejected none other protocol_error"); got != 2 {
		t.Errorf("a health check was counted as a protocol error")
	}
}

// FuzzReadProxyHeader: arbitrary bytes from a balancer never panic the header
// reader, and an address comes back only from bytes that carry a signature.
func FuzzReadProxyHeader(f *testing.F) {
	for _, v := range []byte{1, 2} {
		h := proxyproto.HeaderProxyFromAddrs(v, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4000},
			&net.TCPAddr{IP: net.IPv4(10, 0, 0, 2), Port: 1080})
		b, _ := h.Format()
		f.Add(b)
	}
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte{5, 1, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		addr, err := readProxyHeader(bufio.NewReader(bytes.NewReader(in)))
		if err == nil && addr.IsValid() && !bytes.HasPrefix(in, proxyproto.SIGV1) && !bytes.HasPrefix(in, proxyproto.SIGV2) {
			t.Fatalf("address %v from bytes without a signature: %q", addr, in)
		}
	})
}

// TestUDPAdvertise: behind a balancer that carries only TCP, UDP ASSOCIATE
// replies name access.udp_advertise (with the relay socket bound to it), not the
// control connection's local address, and datagrams to it are relayed.
func TestUDPAdvertise(t *testing.T) {
	h := newHarness(t, "access: {udp_advertise: 127.0.0.3}\n")
	echo := startUDPEcho(t, "127.0.0.1")
	c := associateUDP(t, h.addr, false)
	if c.relay.Addr() != netip.MustParseAddr("127.0.0.3") || c.relay.Port() == 0 {
		t.Fatalf("association relay %v, want 127.0.0.3:PORT", c.relay)
	}
	c.expectEcho(echo, "127.0.0.1", "through the advertised address")
}

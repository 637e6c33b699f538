package main

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"
)

// TestOwnAddressesRefused runs the daemon with a deny list that allows loopback
// and checks, with golang.org/x/net/proxy as the client, that it refuses to
// connect to its own SOCKS port and admin endpoint (a wildcard listener: every
// local address at its port), while other loopback targets stay reachable.
func TestOwnAddressesRefused(t *testing.T) {
	d := startDaemon(t, `
listen: ":0"
admin_listen: 127.0.0.1:0
access: {client_networks: [127.0.0.0/8, "::1/128"], deny_destinations: [127.0.0.2/32]}
`, "")
	listen := netip.MustParseAddrPort(d.listen)
	if !listen.Addr().IsUnspecified() {
		t.Fatalf("listen address %v, want a wildcard", listen)
	}
	proxyAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(listen.Port())))
	dialer, err := xproxy.SOCKS5("tcp", proxyAddr, nil, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	hello := helloServer(t)
	c, err := dialer.Dial("tcp", strings.TrimPrefix(hello.URL, "http://"))
	if err != nil {
		t.Fatalf("CONNECT to a loopback target: %v", err)
	}
	c.Close()
	port := strconv.Itoa(int(listen.Port()))
	for _, dest := range []string{d.admin, "127.0.0.1:" + port, "127.0.0.9:" + port, "[::1]:" + port, "localhost:" + port} {
		c, err := dialer.Dial("tcp", dest)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			got, _ := io.ReadAll(io.LimitReader(c, 64))
			c.Close()
			t.Errorf("CONNECT %s through the daemon succeeded (read %q), want refused", dest, got)
			continue
		}
		if !strings.Contains(err.Error(), "not allowed") {
			t.Errorf("CONNECT %s: %v, want a not-allowed refusal", dest, err)
		}
	}
}

package main

import (
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/sockshaper/sockshaper/internal/haproxytest"
)

// balancedDaemonConfig trusts HAProxy's source address 127.0.0.5 and lets only
// 127.0.0.8 be a client: the client's address can only come from the header.
const balancedDaemonConfig = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth: {users_file: users.htpasswd}
access:
  client_networks: [127.0.0.8/32]
  deny_destinations: [private, link-local, metadata]
  proxy_protocol: {trusted: [127.0.0.5/32]}
timeouts: {handshake: 2s, dial: 2s, idle: 30s, drain: 2s}
`

// dialThroughFrom connects to target through the SOCKS5 proxy at proxyAddr from
// the local address source.
func dialThroughFrom(t *testing.T, source, proxyAddr, user, target string) (net.Conn, error) {
	t.Helper()
	from := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	d, err := xproxy.SOCKS5("tcp", proxyAddr, &xproxy.Auth{User: user, Password: password}, from)
	if err != nil {
		t.Fatal(err)
	}
	return d.Dial("tcp", target)
}

// TestThroughHAProxy: a real HAProxy (mode tcp, send-proxy-v2, from 127.0.0.5)
// in front of the daemon. Clients through it work and are known by their own
// address; a client outside client_networks is refused although the balancer is
// trusted; a client that sends its own PROXY header straight to the daemon is
// refused.
func TestThroughHAProxy(t *testing.T) {
	d := startDaemon(t, balancedDaemonConfig, usersFile())
	lb := haproxytest.Start(t, "127.0.0.5", haproxytest.Backend{Name: "a", Addr: d.listen})
	echo := echoServer(t)

	c, err := dialThroughFrom(t, "127.0.0.8", lb.Addr, "alice", echo)
	if err != nil {
		t.Fatalf("client 127.0.0.8 through HAProxy: %v", err)
	}
	roundTrip(t, c, "through the balancer")
	c.Close()
	waitForRecord(t, d, "session")
	if client, _ := d.records("session")[0]["client"].(string); !strings.HasPrefix(client, "127.0.0.8:") {
		t.Errorf("accounting line client %q, want the client's own 127.0.0.8", client)
	}

	if c, err := dialThroughFrom(t, "127.0.0.9", lb.Addr, "alice", echo); err == nil {
		c.Close()
		t.Error("client 127.0.0.9, outside client_networks, got through the trusted balancer")
	}

	// Straight to the daemon with a forged header naming an allowed client.
	raw, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.8")}}).Dial("tcp", d.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.Write([]byte("PROXY TCP4 127.0.0.8 127.0.0.1 4000 1080\r\n\x05\x01\x02"))
	raw.SetReadDeadline(time.Now().Add(3 * time.Second))
	if got, _ := io.ReadAll(raw); len(got) != 0 {
		t.Errorf("a client's own PROXY header got %x, want a close", got)
	}
}

// TestSplitProxyV1HeaderAccepted: a balancer's PROXY version 1 header that
// crosses two TCP segments is read whole within the handshake deadline, as a
// version 2 header is (go-proxyproto v0.15 alone refused it); a header that
// never ends is refused at the deadline, not before.
func TestSplitProxyV1HeaderAccepted(t *testing.T) {
	d := startDaemon(t, balancedDaemonConfig, usersFile())
	echo := echoServer(t)
	host, port, _ := net.SplitHostPort(echo)
	balancer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.5")}}
	for _, split := range []int{1, 6, 20, 38} {
		raw, err := balancer.Dial("tcp", d.listen)
		if err != nil {
			t.Fatal(err)
		}
		raw.(*net.TCPConn).SetNoDelay(true)
		raw.SetDeadline(time.Now().Add(5 * time.Second))
		header := "PROXY TCP4 127.0.0.8 127.0.0.1 4000 1080\r\n"
		raw.Write([]byte(header[:split]))
		time.Sleep(100 * time.Millisecond) // a second segment, later
		raw.Write([]byte(header[split:]))
		p, _ := strconv.Atoi(port)
		login := []byte{5, 1, 2, 1, 5}
		login = append(append(login, "alice"...), byte(len(password)))
		login = append(login, password...)
		req := append([]byte{5, 1, 0, 1}, net.ParseIP(host).To4()...)
		req = append(req, byte(p>>8), byte(p))
		raw.Write(append(login, req...))
		reply := make([]byte, 2+2+10)
		if _, err := io.ReadFull(raw, reply); err != nil || reply[1] != 2 || reply[3] != 0 || reply[5] != 0 {
			t.Errorf("split after %d bytes: answer %x, %v; want the method, login and CONNECT succeeded", split, reply, err)
		}
		raw.Close()
	}
	waitForRecord(t, d, "session")
	for _, rec := range d.records("session") {
		if client, _ := rec["client"].(string); !strings.HasPrefix(client, "127.0.0.8:") {
			t.Errorf("accounting line client %q, want the header's 127.0.0.8", client)
		}
	}
}

package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// TestHTTP2TunnelsShareOneConnection: a client that chose h2 carries many
// CONNECT tunnels and forwarded requests on one connection, each a session of
// its own (one accounting line each, front http2), logged in once for the
// connection.
func TestHTTP2TunnelsShareOneConnection(t *testing.T) {
	d, addr, ca, _ := httpsDaemon(t, "")
	echo := echoServer(t)
	web := helloServer(t)
	p := dialH2(t, addr, &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}, "alice")
	const n = 20
	for i := range n {
		resp, up, err := p.tunnel(echo)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("tunnel %d: %v, %v", i, resp, err)
		}
		echoOnce(t, resp, up, fmt.Sprintf("stream %d", i))
		up.Close()
		resp.Body.Close()
	}
	status, body, err := p.get(web.URL + "/over-h2")
	if err != nil || status != 200 || body != "hello from /over-h2" {
		t.Errorf("forwarded GET over h2: %d %q %v", status, body, err)
	}
	d.waitMetric(`sockshaper_http2_connections_active`, 1)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="connect",front="http2",result="ok"}`, n)
	if got := d.metric(`sockshaper_auth_attempts_total{result="ok"}`); got != 1 {
		t.Errorf("auth_attempts_total{ok} = %v for %d streams with the same credentials, want 1", got, n+1)
	}
}

// TestHTTP2ServerSpeaksAfterTheClient: the HTTP/2 front sends its SETTINGS
// only after the client's preface (Firefox loses SETTINGS that arrive on a
// connection it opened ahead of need, and drops it), and a connection that
// never sends its preface is closed at the handshake deadline.
func TestHTTP2ServerSpeaksAfterTheClient(t *testing.T) {
	_, addr, ca, _ := httpsDaemon(t, "") // timeouts.handshake: 1s
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN chose %q, want h2", p)
	}
	buf := make([]byte, 64)
	tc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := tc.Read(buf); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("before the client's preface the server sent %d bytes (%q), err %v; want nothing", n, buf[:n], err)
	}
	if _, err := tc.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(nil, tc)
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatalf("after the preface: %v", err)
	}
	if _, ok := f.(*http2.SettingsFrame); !ok {
		t.Fatalf("first frame after the preface is %v, want SETTINGS", f.Header())
	}

	silent, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := silent.Read(buf)
	if n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a silent h2 connection: read %d bytes, err %v; want it closed by the proxy", n, err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a silent h2 connection was closed after %v, want about the 1 s handshake deadline", took)
	}
}

package main

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"testing"
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

package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
)

// TestHTTPSProxyGoClient: Go's net/http client with an https:// proxy URL
// (TLS to the proxy, HTTP/1.1 inside it: Go's transport speaks no HTTP/2 to a
// proxy) forwards a GET of an http:// origin and tunnels a GET of an https://
// origin with CONNECT, both through the HTTPS listener, trusting the test CA
// for the proxy (verified as proxy.test) and for the origin. Wrong credentials
// are refused with 407, and the accounting lines name the https front.
func TestHTTPSProxyGoClient(t *testing.T) {
	d, addr, ca, _ := httpsDaemon(t, "")
	plain := helloServer(t)
	secure := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over TLS from %s", r.URL.Path)
	}))
	pair := ca.Server(t, time.Hour, "127.0.0.1")
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	secure.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	secure.StartTLS()
	t.Cleanup(secure.Close)
	_, port, _ := net.SplitHostPort(addr)
	client := func(user, pass string) *http.Client {
		proxy := &url.URL{Scheme: "https", User: url.UserPassword(user, pass), Host: net.JoinHostPort("proxy.test", port)}
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy: http.ProxyURL(proxy),
			// proxy.test is the HTTPS listener: the name its certificate is
			// verified against, as a client configured with it would.
			DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
				if a == proxy.Host {
					a = addr
				}
				return dialer.DialContext(ctx, network, a)
			},
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool},
		}}
	}
	c := client("alice", password)
	for _, tc := range []struct{ name, url, want string }{
		{"forwarded GET", plain.URL + "/forwarded", "hello from /forwarded"},
		{"CONNECT to an https origin", secure.URL + "/tunnelled", "hello over TLS from /tunnelled"},
	} {
		resp, err := c.Get(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || string(b) != tc.want {
			t.Errorf("%s: %s %q %v; want 200 %q", tc.name, resp.Status, b, err, tc.want)
		}
	}
	bad := client("alice", "wrong")
	if resp, err := bad.Get(plain.URL + "/refused"); err != nil || resp.StatusCode != http.StatusProxyAuthRequired {
		t.Errorf("a wrong password, forwarded: %v %v; want 407", resp, err)
	} else {
		resp.Body.Close()
	}
	if _, err := bad.Get(secure.URL + "/refused"); err == nil {
		t.Error("a wrong password got a CONNECT tunnel")
	}
	// The tunnel's session ends, and is accounted, when its connection closes.
	c.CloseIdleConnections()
	bad.CloseIdleConnections()
	waitForRecordCount(t, d, "session", 4)
	fronts := map[string]int{}
	for _, rec := range d.records("session") {
		fronts[fmt.Sprint(rec["front"], " ", rec["command"], " ", rec["result"])]++
	}
	if fronts["https request ok"] != 1 || fronts["https connect ok"] != 1 {
		t.Errorf("accounting lines by front, command and result: %v; want one https request and one https connect that succeeded", fronts)
	}
}

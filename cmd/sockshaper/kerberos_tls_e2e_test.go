package main

import (
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/kdctest"
	"github.com/sockshaper/sockshaper/internal/testca"
)

// TestKerberosTLSFronts: with tls.listen and auth.require_tls, alice's ticket
// logs her in through the HTTPS front (curl -x https://, forwarded and
// tunnelled) and through the HTTP/2 front (a Go client: the first stream's
// 407 offers Negotiate and Basic, a Negotiate stream gets its 200 with the
// mutual-authentication token, and later streams without credentials are
// hers). On the plaintext listener a ticket is still accepted (it is no
// reusable password): the 407 there offers Negotiate only, a Basic password
// is refused with 403 before it is checked, and SOCKS5 offers GSS-API but no
// password method.
func TestKerberosTLSFronts(t *testing.T) {
	p := startKrbProxy(t)
	ca := testca.New(t, "sockshaper test CA")
	ca.Server(t, 24*time.Hour, "proxy.test", "127.0.0.1").Write(t, p.dir, "proxy")
	caFile := ca.WriteCA(t, p.dir, "ca.pem")
	d := p.start(t, krbConfigAuth("  require_tls: true\n", "tls: {listen: 127.0.0.1:0, cert_file: proxy.pem, key_file: proxy.key}\n"))
	tlsAddr, _ := d.records("serving")[0]["tls_listen"].(string)
	web := helloServer(t)
	alice := p.k.Kinit("alice@" + kdctest.Realm)

	httpsURL := "https://proxy.test:" + portOf(tlsAddr)
	for _, tc := range []struct{ name, path string }{{"forward", "/forwarded"}, {"CONNECT", "/tunnelled"}} {
		args := []string{"--proxy-cacert", caFile}
		if tc.name == "CONNECT" {
			args = append(args, "-p")
		}
		body, status, code := p.curlNegotiate(t, alice, httpsURL, nil, append(args, web.URL+tc.path)...)
		if code != 0 || status != 200 || body != "hello from "+tc.path {
			t.Errorf("%s through the HTTPS proxy: exit %d, status %d, %q", tc.name, code, status, body)
		}
	}
	// The plaintext listener under require_tls: Negotiate yes, passwords no.
	plainURL := "http://proxy.test:" + portOf(d.listen)
	if body, status, _ := p.curlNegotiate(t, alice, plainURL, nil, web.URL+"/plain"); status != 200 || body != "hello from /plain" {
		t.Errorf("ticket on the plaintext listener: %d %q", status, body)
	}
	c, br := dialProxy(t, d.listen)
	get := "GET " + web.URL + "/x HTTP/1.1\r\nHost: x\r\n"
	resp := rawRequest(t, c, br, get+"\r\n")
	if v := resp.Header.Values("Proxy-Authenticate"); resp.StatusCode != 407 || len(v) != 1 || v[0] != "Negotiate" {
		t.Errorf("plaintext, no credentials: %d %v; want 407 offering Negotiate only", resp.StatusCode, v)
	}
	readBody(resp)
	if resp := rawRequest(t, c, br, get+"Proxy-Authorization: Basic "+basicAuth("alice", password)+"\r\n\r\n"); resp.StatusCode != 403 {
		t.Errorf("plaintext, a password: %d; want 403", resp.StatusCode)
	}
	if _, method := greetGSS(t, d.listen, 2); method != 0xff {
		t.Errorf("SOCKS5 on the plaintext listener offering username/password: method %d, want none (0xff)", method)
	}
	if _, method := greetGSS(t, d.listen, 2, 1); method != 1 {
		t.Errorf("SOCKS5 on the plaintext listener offering GSS-API too: method %d, want 1", method)
	}

	h2 := dialH2(t, tlsAddr, &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}, "")
	echo := echoServer(t)
	resp, _, err := h2.tunnel(echo)
	if err != nil || resp.StatusCode != 407 || !offers(resp.Header.Values("Proxy-Authenticate"), "Negotiate") ||
		!offers(resp.Header.Values("Proxy-Authenticate"), "Basic") {
		t.Fatalf("HTTP/2 stream without credentials: %v %v; want 407 offering Negotiate and Basic", resp, err)
	}
	tk := p.k.ServiceTicket("alice@"+kdctest.Realm, proxyHTTPService)
	h2.auth = negotiateHeader(tk.Negotiate(t, kdctest.TokenOptions{Mutual: true}))
	resp, up, err := h2.tunnel(echo)
	if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Proxy-Authenticate"), "Negotiate ") {
		t.Fatalf("HTTP/2 Negotiate stream: %v %v; want 200 with the mutual-authentication token", resp, err)
	}
	echoOnce(t, resp, up, "first stream")
	h2.auth = ""
	for i := range 3 {
		resp, up, err := h2.tunnel(echo)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("HTTP/2 stream %d without credentials after the login: %v %v", i, resp, err)
		}
		echoOnce(t, resp, up, "later stream")
		up.Close()
		io.Copy(io.Discard, resp.Body)
	}
	if status, body, err := h2.get(web.URL + "/h2"); status != 200 || body != "hello from /h2" {
		t.Errorf("HTTP/2 forward after the login: %d %q %v", status, body, err)
	}
	up.Close()
	waitLines(d, "alice", "", 8)
	fronts := map[string]int{}
	for _, l := range d.sessionLines("alice", "") {
		if l["result"] == "ok" && l["group"] == "staff" {
			fronts[l["front"].(string)]++
		}
	}
	if fronts["https"] != 2 || fronts["http"] != 1 || fronts["http2"] < 4 {
		t.Errorf("alice's sessions by front: %v; want https 2, http 1, http2 at least 4", fronts)
	}
	if n := d.metric(`sockshaper_auth_attempts_total{result="ok"}`); n != 0 {
		t.Errorf("password logins: %v; want none", n)
	}
}

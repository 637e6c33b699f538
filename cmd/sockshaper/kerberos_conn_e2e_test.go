package main

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestKerberosConnectionLogin drives the HTTP/1.1 front with tokens a Go
// client builds around real tickets: a Negotiate login holds for the
// connection's later requests (which come without credentials, as
// browsers send them), not for another connection; the mutual-authentication
// token comes back on the success response (the 200 of a CONNECT, the
// forwarded response); a replayed token, a ticket for another service, a
// malformed token and NTLM are each refused with a 407 and their own reason;
// a refused token ends the connection's login, and so does the ticket's end.
func TestKerberosConnectionLogin(t *testing.T) {
	p := startKrbProxy(t)
	d := p.start(t, krbConfig(""))
	web := helloServer(t)
	tk := p.k.ServiceTicket("alice@"+kdctest.Realm, proxyHTTPService)
	get := "GET " + web.URL + "/page HTTP/1.1\r\nHost: " + strings.TrimPrefix(web.URL, "http://") + "\r\n"

	c, br := dialProxy(t, d.listen)
	token := tk.Negotiate(t, kdctest.TokenOptions{Mutual: true})
	resp := rawRequest(t, c, br, get+"Proxy-Authorization: "+negotiateHeader(token)+"\r\n\r\n")
	if body := readBody(resp); resp.StatusCode != 200 || body != "hello from /page" {
		t.Fatalf("with a ticket: %d %q", resp.StatusCode, body)
	}
	if v := resp.Header.Get("Proxy-Authenticate"); !strings.HasPrefix(v, "Negotiate ") {
		t.Errorf("forwarded response: Proxy-Authenticate %q; want the mutual-authentication token", v)
	}
	for i := range 2 { // later requests on the connection: no credentials, no token back
		resp = rawRequest(t, c, br, get+"\r\n")
		if body := readBody(resp); resp.StatusCode != 200 || resp.Header.Get("Proxy-Authenticate") != "" {
			t.Errorf("request %d after the login: %d %q, Proxy-Authenticate %q", i+2, resp.StatusCode, body, resp.Header.Get("Proxy-Authenticate"))
		}
	}
	// Another connection is not logged in; the same token there is a replay.
	c2, br2 := dialProxy(t, d.listen)
	if resp := rawRequest(t, c2, br2, get+"\r\n"); resp.StatusCode != 407 || !offers(resp.Header.Values("Proxy-Authenticate"), "Negotiate") {
		t.Errorf("another connection without credentials: %d %v", resp.StatusCode, resp.Header.Values("Proxy-Authenticate"))
	} else {
		readBody(resp)
	}
	if resp := rawRequest(t, c2, br2, get+"Proxy-Authorization: "+negotiateHeader(token)+"\r\n\r\n"); resp.StatusCode != 407 {
		t.Errorf("replayed token: %d; want 407", resp.StatusCode)
	} else {
		readBody(resp)
	}
	// A refused token on the logged-in connection ends its login.
	resp = rawRequest(t, c, br, get+"Proxy-Authorization: Negotiate !!notbase64\r\n\r\n")
	readBody(resp)
	if resp = rawRequest(t, c, br, get+"\r\n"); resp.StatusCode != 407 {
		t.Errorf("after a refused token: %d; want 407", resp.StatusCode)
	}
	readBody(resp)

	// A connection's login ends with its ticket.
	short := p.k.ServiceTicket("bob@"+kdctest.Realm, proxyHTTPService, "-l", "4s")
	if left := time.Until(short.EndTime); left > 30*time.Second {
		t.Fatalf("kinit -l 4s gave a ticket for %v", left)
	}
	c4, br4 := dialProxy(t, d.listen)
	if resp := rawRequest(t, c4, br4, get+"Proxy-Authorization: "+negotiateHeader(short.Negotiate(t, kdctest.TokenOptions{}))+"\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("bob's short ticket: %d", resp.StatusCode)
	} else {
		readBody(resp)
	}
	time.Sleep(time.Until(short.EndTime) + 100*time.Millisecond)
	if resp := rawRequest(t, c4, br4, get+"\r\n"); resp.StatusCode != 407 {
		t.Errorf("after the ticket's end: %d; want 407", resp.StatusCode)
	} else {
		readBody(resp)
	}

	// CONNECT: the token comes back on the 200.
	c3, br3 := dialProxy(t, d.listen)
	target := strings.TrimPrefix(web.URL, "http://")
	resp = rawRequest(t, c3, br3, "CONNECT "+target+" HTTP/1.1\r\nHost: "+target+"\r\nProxy-Authorization: "+
		negotiateHeader(tk.Negotiate(t, kdctest.TokenOptions{Mutual: true}))+"\r\n\r\n")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Proxy-Authenticate"), "Negotiate ") {
		t.Errorf("CONNECT: %d, Proxy-Authenticate %q; want 200 with the token", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
	}

	other := p.k.ServiceTicket("alice@"+kdctest.Realm, kdctest.OtherService)
	for _, tc := range []struct{ name, header, result string }{
		{"ticket for another service", negotiateHeader(other.Negotiate(t, kdctest.TokenOptions{})), "kerberos_wrong_service"},
		{"NTLM", "Negotiate TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAKAGFKAAAADw==", "kerberos_mechanism"},
		{"not base64", "Negotiate !!notbase64", "kerberos_malformed"},
	} {
		c, br := dialProxy(t, d.listen)
		resp := rawRequest(t, c, br, get+"Proxy-Authorization: "+tc.header+"\r\n\r\n")
		if body := readBody(resp); resp.StatusCode != 407 {
			t.Errorf("%s: %d %q; want 407", tc.name, resp.StatusCode, body)
		}
		if n := d.metric(`sockshaper_auth_attempts_total{result="` + tc.result + `"}`); n < 1 {
			t.Errorf("%s: %s = %v", tc.name, tc.result, n)
		}
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_replay"}`, 1)
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_ok"}`, 3)
	waitRecords(d, "login failed", 5)
	reasons := map[any]int{}
	for _, r := range d.records("login failed") {
		reasons[r["reason"]]++
	}
	for _, want := range []string{"kerberos_replay", "kerberos_wrong_service", "kerberos_mechanism", "kerberos_malformed"} {
		if reasons[want] == 0 {
			t.Errorf("no log line with reason %s: %v", want, reasons)
		}
	}
}

// dialProxy connects to the proxy and returns the connection and its reader.
func dialProxy(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// offers reports whether the Proxy-Authenticate values offer scheme.
func offers(values []string, scheme string) bool {
	for _, v := range values {
		if s, _, _ := strings.Cut(v, " "); strings.EqualFold(s, scheme) {
			return true
		}
	}
	return false
}

package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestKerberosKeytabRotation: the service's key is rotated while sessions
// run. Appended to the keytab and read on SIGHUP, the new key version serves
// new tickets and the old one the tickets issued before; the tunnel that
// logged in before relays on. A users file that stops listing alice cuts her
// password session but not her ticket's. A keytab replaced by one without the
// old version (picked up by the watch, no signal) refuses the old tickets as
// no_key, takes new ones, and the tunnel still relays.
func TestKerberosKeytabRotation(t *testing.T) {
	p := startKrbProxy(t)
	d := p.start(t, krbConfig(""))
	echo := echoServer(t)
	old := p.k.ServiceTicket("alice@"+kdctest.Realm, proxyHTTPService) // key version 2

	tunnel := negotiateConnect(t, d.listen, echo, old.Negotiate(t, kdctest.TokenOptions{}))
	roundTrip(t, tunnel, "before the rotation")
	byPassword := dialThrough(t, d.listen, "alice", echo)
	roundTrip(t, byPassword, "password session")
	web := helloServer(t)
	get := "GET " + web.URL + "/kept HTTP/1.1\r\nHost: " + strings.TrimPrefix(web.URL, "http://") + "\r\n"
	kept, keptBr := dialProxy(t, d.listen) // a keep-alive connection logged in with a ticket
	if resp := rawRequest(t, kept, keptBr, get+"Proxy-Authorization: "+negotiateHeader(p.k.ServiceTicket("alice@"+kdctest.Realm,
		proxyHTTPService).Negotiate(t, kdctest.TokenOptions{}))+"\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("keep-alive connection's login: %d", resp.StatusCode)
	} else {
		readBody(resp)
	}

	p.k.Keytab(p.keytab, proxyHTTPService, proxySOCKSService) // key version 3, appended
	writeFile(t, filepath.Join(p.dir, "users.htpasswd"), users("bob"))
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)
	bob := p.k.ServiceTicket("bob@"+kdctest.Realm, proxyHTTPService)
	for name, tk := range map[string]kdctest.Ticket{"new key version (bob)": bob, "old key version (alice)": old} {
		c := negotiateConnect(t, d.listen, echo, tk.Negotiate(t, kdctest.TokenOptions{}))
		roundTrip(t, c, name)
		c.Close()
	}
	roundTrip(t, tunnel, "after the rotation")
	if resp := rawRequest(t, kept, keptBr, get+"\r\n"); resp.StatusCode != 200 {
		t.Errorf("the next request of the connection alice's ticket logged in, after the users file dropped her: %d", resp.StatusCode)
	} else {
		readBody(resp)
	}
	byPassword.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := byPassword.Read(make([]byte, 1)); err == nil {
		t.Error("alice's password session survived the users file that dropped her")
	}

	// A new keytab without the old versions, renamed over the old one.
	fresh := filepath.Join(t.TempDir(), "fresh.keytab")
	p.k.Keytab(fresh, proxyHTTPService, proxySOCKSService) // key version 4 only
	reloads := len(d.records("keytab reloaded"))
	if err := os.Rename(fresh, p.keytab); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(15 * time.Second); len(d.records("keytab reloaded")) == reloads; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the keytab watch did not reload the replaced keytab")
		}
	}
	c, br := dialProxy(t, d.listen)
	resp := rawRequest(t, c, br, connectHead(echo, old.Negotiate(t, kdctest.TokenOptions{})))
	if resp.StatusCode != 407 {
		t.Errorf("old key version after the replacement: %d; want 407", resp.StatusCode)
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_no_key"}`, 1)
	newest := p.k.ServiceTicket("alice@"+kdctest.Realm, proxyHTTPService)
	c2 := negotiateConnect(t, d.listen, echo, newest.Negotiate(t, kdctest.TokenOptions{}))
	roundTrip(t, c2, "key version 4")
	roundTrip(t, tunnel, "after the replacement")
}

// connectHead is a CONNECT to target with a Negotiate token.
func connectHead(target string, token []byte) string {
	return "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\nProxy-Authorization: " + negotiateHeader(token) + "\r\n\r\n"
}

// negotiateConnect opens an HTTP CONNECT tunnel to target logged in with
// token, and returns it once the proxy answered 200.
func negotiateConnect(t *testing.T, proxyAddr, target string, token []byte) net.Conn {
	t.Helper()
	c, br := dialProxy(t, proxyAddr)
	resp := rawRequest(t, c, br, connectHead(target, token))
	if resp.StatusCode != 200 || br.Buffered() != 0 {
		t.Fatalf("CONNECT with a ticket: %s", strings.TrimSpace(resp.Status))
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

package main

import (
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// TestKerberosCurlHTTP: alice, with a ticket from kinit and no password
// anywhere, goes through the plain HTTP front with curl --proxy-negotiate,
// forwarded and tunnelled (-p); the accounting lines name her and her shaping
// group. Without a ticket curl gets the 407 (Negotiate and Basic offered); eve
// of the other realm and a clock 10 minutes fast are refused with their own
// reasons; with the KDC stopped, a ticket got before still works.
func TestKerberosCurlHTTP(t *testing.T) {
	p := startKrbProxy(t)
	d := p.start(t, krbConfig(""))
	web := helloServer(t)
	proxyURL := "http://proxy.test:" + portOf(d.listen)
	alice := p.k.Kinit("alice@" + kdctest.Realm)

	for _, tc := range []struct{ name, path string }{{"forward", "/forwarded"}, {"CONNECT", "/tunnelled"}} {
		var args []string
		if tc.name == "CONNECT" {
			args = append(args, "-p")
		}
		body, status, code := p.curlNegotiate(t, alice, proxyURL, nil, append(args, web.URL+tc.path)...)
		if code != 0 || status != 200 || body != "hello from "+tc.path {
			t.Errorf("%s as alice: exit %d, status %d, %q", tc.name, code, status, body)
		}
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_ok"}`, 2)
	waitRecords(d, "session", 4)
	fronts := map[string]int{}
	for _, l := range d.sessionLines("alice", "") {
		fronts[l["front"].(string)+" "+l["command"].(string)+" "+l["result"].(string)+" "+l["group"].(string)]++
	}
	if fronts["http request ok staff"] != 1 || fronts["http connect ok staff"] != 1 {
		t.Errorf("alice's accounting lines by front, command, result and group: %v; want one request and one connect, ok, staff", fronts)
	}

	// No ticket: curl has nothing to answer the challenge with.
	_, status, _ := p.curlNegotiate(t, p.k.NewCCache(), proxyURL, nil, "-D", "-", web.URL+"/none")
	if status != 407 {
		t.Errorf("no ticket: status %d, want 407", status)
	}
	eve := p.k.Kinit("eve@" + kdctest.OtherRealm)
	if _, status, _ := p.curlNegotiate(t, eve, proxyURL, nil, web.URL+"/eve"); status != 407 {
		t.Errorf("eve of the other realm: status %d, want 407", status)
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_realm"}`, 1)

	faketime := requireTool(t, "faketime", "faketime")
	p.k.Kvno(alice, proxyHTTPService) // the ticket exists: only the authenticator is made under the fake clock
	if _, status, _ := p.curlNegotiate(t, alice, proxyURL, []string{faketime, "-f", "+10m"}, web.URL+"/skewed"); status != 407 {
		t.Errorf("clock 10 minutes fast: status %d, want 407", status)
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_clock_skew"}`, 1)
	if lines := d.sessionLines("", "auth_kerberos_clock_skew"); len(lines) != 1 || lines[0]["user"] != "alice@"+kdctest.Realm {
		t.Errorf("clock skew accounting lines: %v; want one naming alice's principal", lines)
	}

	bob := p.k.Kinit("bob@" + kdctest.Realm)
	p.k.Kvno(bob, proxyHTTPService)
	p.k.Stop()
	if body, status, _ := p.curlNegotiate(t, bob, proxyURL, nil, web.URL+"/kdc-down"); status != 200 || body != "hello from /kdc-down" {
		t.Errorf("KDC stopped, bob's ticket got before: status %d, %q", status, body)
	}
	for _, l := range d.sessionLines("bob", "") {
		if l["result"] == "ok" && l["group"] != "students" {
			t.Errorf("bob's line %v; want the default group students", l)
		}
	}
	checkNoSecrets(t, d, kdctest.Password("alice"), kdctest.Password("bob"))
	if strings.Contains(d.logText(), "Negotiate ") {
		t.Error("a Negotiate token appears in the log")
	}
}

// portOf returns the port of host:port.
func portOf(addr string) string {
	_, port, _ := strings.Cut(addr, ":")
	return port
}

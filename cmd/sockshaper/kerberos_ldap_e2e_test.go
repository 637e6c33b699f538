package main

import (
	"testing"

	"github.com/sockshaper/sockshaper/internal/kdctest"
	"github.com/sockshaper/sockshaper/internal/slapdtest"
)

// TestKerberosDirectoryGroups: with auth.ldap, a Kerberos user's shaping group
// comes from their directory entry (slapd): alice is staff, bob a student. A
// principal the directory does not know is refused (unknown_user); with the
// directory stopped, a user it answered for shortly before still gets in,
// and one it never answered for gets 503 (unavailable), not a failed login.
func TestKerberosDirectoryGroups(t *testing.T) {
	s := slapdtest.Start(t, slapdtest.Options{})
	p := startKrbProxy(t)
	p.k.Kadmin(kdctest.Realm, "addprinc -pw "+kdctest.Password("zed")+" zed", "addprinc -pw "+kdctest.Password("carol")+" carol")
	d := startDaemonAt(t, p.dir, nil, ldapDaemonConfig(t, s, kerberosBlock, "", groupShaping), "")
	web := helloServer(t)
	proxyURL := "http://proxy.test:" + portOf(d.listen)

	for user, group := range map[string]string{"alice": "staff", "bob": "students"} {
		cc := p.k.Kinit(user + "@" + kdctest.Realm)
		if body, status, _ := p.curlNegotiate(t, cc, proxyURL, nil, web.URL+"/"+user); status != 200 || body != "hello from /"+user {
			t.Errorf("%s: %d %q", user, status, body)
		}
		waitLines(d, user, "", 1)
		for _, l := range d.sessionLines(user, "") {
			if l["result"] != "ok" || l["group"] != group {
				t.Errorf("%s's accounting line %v; want result ok, group %s", user, l, group)
			}
		}
	}
	zed := p.k.Kinit("zed@" + kdctest.Realm)
	if _, status, _ := p.curlNegotiate(t, zed, proxyURL, nil, web.URL+"/zed"); status != 407 {
		t.Errorf("zed, unknown to the directory: %d; want 407", status)
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="kerberos_unknown_user"}`, 1)

	carol := p.k.Kinit("carol@" + kdctest.Realm)
	bob := p.k.Kinit("bob@" + kdctest.Realm)
	s.Stop()
	if body, status, _ := p.curlNegotiate(t, bob, proxyURL, nil, web.URL+"/bob-again"); status != 200 {
		t.Errorf("bob, answered for before the outage: %d %q", status, body)
	}
	if _, status, _ := p.curlNegotiate(t, carol, proxyURL, nil, web.URL+"/carol"); status != 503 {
		t.Errorf("carol, directory stopped: %d; want 503", status)
	}
	d.waitMetric(`sockshaper_auth_attempts_total{result="unavailable"}`, 1)
	if n := d.metric(`sockshaper_auth_attempts_total{result="failed"}`); n != 0 {
		t.Errorf("failed logins: %v; want 0", n)
	}
	checkNoSecrets(t, d, slapdtest.ServicePassword, kdctest.Password("alice"), kdctest.Password("bob"))
}

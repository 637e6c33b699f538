package main

import (
	"net"
	"strings"
	"testing"
)

// TestDeniedDestinationNamesTheRule: a destination refused on SOCKS5 or the
// HTTP front (a forwarded request, a CONNECT) names the rule that refused it
// in the log line and the accounting line: a named set, a CIDR of the config,
// the IPv4 rule an IPv4-mapped or NAT64 address falls under, the proxy's own
// listener, and the HTTP fronts' http.connect_ports.
func TestDeniedDestinationNamesTheRule(t *testing.T) {
	d := startDaemon(t, baseConfig+"http: {connect_ports: [\"80-82\", \"1024-65535\"]}\n", usersFile())
	_, port, _ := net.SplitHostPort(d.listen)
	socks := []struct{ target, rule string }{
		{"127.0.0.2:80", "127.0.0.2/32"},
		{"10.1.2.3:80", "private"},
		{"169.254.169.254:80", "metadata"},
		{"169.254.1.1:80", "link-local"},
		{"[::ffff:127.0.0.2]:80", "127.0.0.2/32"},
		{"[64:ff9b::7f00:2]:80", "embedded-ipv4:127.0.0.2/32"},
		{d.listen, "proxy-listener"},
	}
	for _, tc := range socks {
		if c, err := socksDialer(t, d.listen, "alice").Dial("tcp", tc.target); err == nil {
			c.Close()
			t.Fatalf("SOCKS5 CONNECT %s: allowed", tc.target)
		}
	}
	proxy := httpProxyURL(d.listen, "alice", password)
	web := []struct{ args, rule string }{
		{"http://127.0.0.2:81/x", "127.0.0.2/32"},
		{"http://169.254.169.254/latest/meta-data/", "metadata"},
		{"-p http://[64:ff9b::7f00:2]:82/", "embedded-ipv4:127.0.0.2/32"},
		{"http://127.0.0.1:" + port + "/loop", "proxy-listener"},
		{"http://192.0.2.1:25/", "http.connect_ports"},
	}
	for _, tc := range web {
		args := append([]string{"-o", "/dev/null", "-w", "%{http_code}", "-x", proxy}, strings.Fields(tc.args)...)
		if out, _ := curlArgs(t, args...); !strings.Contains(out, "403") {
			t.Errorf("curl %s: %q, want 403", tc.args, out)
		}
	}
	waitForRecordCount(t, d, "session", len(socks)+len(web))
	want := map[string]int{}
	for _, tc := range socks {
		want["socks5 "+tc.rule]++
	}
	for _, tc := range web {
		want["http "+tc.rule]++
	}
	got := map[string]int{}
	for _, l := range d.records("session") {
		if l["result"] != "destination_denied" {
			t.Errorf("accounting line %v: want destination_denied", l)
		}
		front, _ := l["front"].(string)
		rule, _ := l["rule"].(string)
		got[front+" "+rule]++
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("accounting lines by front and rule %v, want %v", got, want)
			break
		}
	}
	logged := map[string]int{}
	for _, l := range d.records("destination denied") {
		rule, _ := l["rule"].(string)
		logged[rule]++
	}
	if len(logged) != 7 || logged["proxy-listener"] != 2 || logged["metadata"] != 2 || logged[""] != 0 {
		t.Errorf("\"destination denied\" lines by rule %v, want every rule named", logged)
	}
}

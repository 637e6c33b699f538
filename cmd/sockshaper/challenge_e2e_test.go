package main

import (
	"crypto/tls"
	"crypto/x509"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// resultsTo counts the accounting lines of sessions to dest by front and
// result ("http auth_required").
func (d *process) resultsTo(dest string) map[string]int {
	n := map[string]int{}
	for _, l := range d.sessionsTo(dest) {
		if l["destination"] == dest {
			n[l["front"].(string)+" "+l["result"].(string)]++
		}
	}
	return n
}

// TestChallengeIsNotAFailedLogin: a client that logs in as browsers do (its
// request without credentials, the 407 challenge, the request again with
// them: curl --proxy-anyauth) makes one auth_required and one ok session on
// every HTTP front (HTTP/1.1, HTTPS, HTTP/2), and no auth_failed and no
// failed login attempt; a wrong password after the challenge is one
// auth_failed and one failed attempt.
func TestChallengeIsNotAFailedLogin(t *testing.T) {
	d, tlsAddr, _, dir := httpsDaemon(t, "")
	caFile := filepath.Join(dir, "ca.pem")
	anyauth := func(proxyURL, target string, extra ...string) (string, int) {
		return curlVia(t, append(append([]string{"--proxy-anyauth", "-x", proxyURL}, extra...), target)...)
	}
	esc := strings.ReplaceAll(password, " ", "%20")

	plain := helloServer(t)
	if out, code := anyauth("http://alice:"+esc+"@"+d.listen, plain.URL+"/hello"); code != 0 || out != "hello from /hello" {
		t.Fatalf("curl --proxy-anyauth, HTTP front: exit %d, %q", code, out)
	}
	overTLS := helloServer(t)
	if out, code := anyauth("https://alice:"+esc+"@"+tlsAddr, overTLS.URL+"/hello", "--proxy-cacert", caFile); code != 0 || out != "hello from /hello" {
		t.Fatalf("curl --proxy-anyauth, HTTPS front: exit %d, %q", code, out)
	}
	// HTTP/2 (curl here predates --proxy-http2): a stream without
	// credentials, then one with them, as Chromium sends them.
	overH2 := helloServer(t)
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(caFile)
	if err != nil || !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("CA: %v", err)
	}
	h2 := dialH2(t, tlsAddr, &tls.Config{RootCAs: pool, ServerName: "proxy.test"}, "")
	if status, _, err := h2.get(overH2.URL + "/hello"); err != nil || status != 407 {
		t.Fatalf("HTTP/2 stream without credentials: %d, %v; want 407", status, err)
	}
	h2.auth = "Basic " + basicAuth("alice", password)
	if status, body, err := h2.get(overH2.URL + "/hello"); err != nil || status != 200 || body != "hello from /hello" {
		t.Fatalf("HTTP/2 stream with credentials: %d %q, %v", status, body, err)
	}
	wrong := helloServer(t)
	if out, code := anyauth("http://alice:wr0ng@"+d.listen, wrong.URL+"/hello", "-f"); code == 0 {
		t.Fatalf("wrong password: curl succeeded: %q", out)
	}

	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="auth_failed"}`, 1)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http",result="auth_required"}`, 2)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="https",result="auth_required"}`, 1)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="request",front="http2",result="auth_required"}`, 1)
	for _, tc := range []struct {
		name, dest string
		want       map[string]int
	}{
		{"HTTP/1.1", hostOf(plain.URL), map[string]int{"http auth_required": 1, "http ok": 1}},
		{"HTTPS", hostOf(overTLS.URL), map[string]int{"https auth_required": 1, "https ok": 1}},
		{"HTTP/2", hostOf(overH2.URL), map[string]int{"http2 auth_required": 1, "http2 ok": 1}},
		{"wrong password", hostOf(wrong.URL), map[string]int{"http auth_required": 1, "http auth_failed": 1}},
	} {
		if got := d.resultsTo(tc.dest); !maps.Equal(got, tc.want) {
			t.Errorf("%s: sessions by front and result %v, want %v", tc.name, got, tc.want)
		}
	}
	if v := d.metric(`sockshaper_auth_attempts_total{result="failed"}`); v != 1 {
		t.Errorf("failed login attempts = %v, want 1 (the wrong password)", v)
	}
	if n := len(d.records("credentials required")); n != 4 {
		t.Errorf("%d debug lines \"credentials required\", want one per challenge (4)", n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.lines {
		if _, ofClient := l["client"]; ofClient && (l["level"] == "WARN" || l["level"] == "ERROR") {
			t.Errorf("a client's login logged as a warning: %v", l)
		}
	}
}

// hostOf returns the host:port of an http:// URL.
func hostOf(rawURL string) string {
	return strings.TrimPrefix(strings.TrimPrefix(rawURL, "http://"), "https://")
}

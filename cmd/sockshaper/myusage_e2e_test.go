package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/testca"
)

// myUsageConfig gives students a download rate and quotas, keeps usage in the
// daemon's folder, and adds a TLS listener (proxy.pem, proxy.key).
const myUsageConfig = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth: {users_file: users.htpasswd}
access:
  client_networks: [127.0.0.0/8]
  deny_destinations: [private, link-local, metadata, 127.0.0.2/32]
timeouts: {handshake: 5s, dial: 2s, idle: 30s, drain: 2s}
tls: {listen: 127.0.0.1:0, cert_file: proxy.pem, key_file: proxy.key}
state_dir: state
shaping:
  default_group: students
  groups:
    students: {download: 16Mbit, quota: {daily: 10MiB, monthly: 100MiB}}
`

// myUsageDaemon starts the daemon on config with users alice and bob and a
// certificate for 127.0.0.1; it returns the daemon and its TLS address.
func myUsageDaemon(t *testing.T, config string) (*process, string) {
	t.Helper()
	dir := t.TempDir()
	ca := testca.New(t, "sockshaper test CA")
	ca.Server(t, 24*time.Hour, "proxy.test", "127.0.0.1").Write(t, dir, "proxy")
	d := startDaemonAt(t, dir, nil, config, users("alice", "bob"))
	addr, _ := d.records("serving")[0]["tls_listen"].(string)
	return d, addr
}

// TestMyUsageInChromium: after alice and bob moved known bytes through the
// proxy, headless Chromium (puppeteer-core) logged in as alice sees her page
// on the plain listener and over HTTPS (HTTP/2): her name, group, bytes and
// quota, and nothing of bob's; without a login or with a wrong password
// (curl) the answer is 401 and no data; under auth.require_tls the plaintext
// listener refuses the password and names the https URL.
func TestMyUsageInChromium(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	node := requireTool(t, "node", "nodejs")
	mod := puppeteerCore(t)
	d, tlsAddr := myUsageDaemon(t, myUsageConfig)
	if n := fetchThrough(t, d.listen, "alice", fixedServer(t, 600<<10)); n != 600<<10 {
		t.Fatalf("alice fetched %d bytes", n)
	}
	if n := fetchThrough(t, d.listen, "bob", fixedServer(t, 2<<20)); n != 2<<20 {
		t.Fatalf("bob fetched %d bytes", n)
	}
	waitToday(t, d, "alice", 600<<10)
	waitToday(t, d, "bob", 2<<20)
	open := dialThrough(t, d.listen, "alice", echoServer(t)) // one open session: app other
	defer open.Close()
	roundTrip(t, open, "x")

	shot := filepath.Join(t.TempDir(), "my-usage.png")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "my_usage.js"), chromium,
		"http://"+d.listen+"/my-usage", "https://"+tlsAddr+"/my-usage", "alice", password, t.TempDir(), shot)
	cmd.Env = append(os.Environ(), "PUPPETEER="+mod)
	var out, errs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errs
	if err := cmd.Run(); err != nil {
		t.Fatalf("puppeteer: %v\n%s%s", err, out.String(), errs.String())
	}
	var got struct {
		Status, HTTPSStatus   int
		Text, HTTPSText       string
		HTTPSProtocol         string
		Headers               map[string]string
		BarWidth, ScrollWidth float64
		CSP                   []string
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("puppeteer printed %q: %v", out.String(), err)
	}
	t.Logf("screenshot: %s; page text:\n%s", shot, got.Text)
	if b, err := os.ReadFile(shot); err == nil && got.Status == 200 { // for the lead to quote
		os.WriteFile("/tmp/sockshaper-my-usage.png", b, 0o644)
	}
	for _, want := range []string{"alice", "students", "600.0 KiB", "600.0 KiB of 10.0 MiB used", "of 100.0 MiB used",
		"16.0 Mbit/s down", "other\t1"} {
		if got.Status != 200 || !strings.Contains(got.Text, want) {
			t.Errorf("alice's page (%d) lacks %q:\n%s", got.Status, want, got.Text)
		}
	}
	for _, bobs := range []string{"bob", "2.0 MiB", "2.6 MiB"} {
		if strings.Contains(got.Text, bobs) || strings.Contains(got.HTTPSText, bobs) {
			t.Errorf("alice's page shows %q:\n%s", bobs, got.Text)
		}
	}
	if h := got.Headers; h["cache-control"] != "no-store" || !strings.HasPrefix(h["content-security-policy"], "default-src 'none'") {
		t.Errorf("headers %v", h)
	}
	if got.BarWidth <= 0 || len(got.CSP) > 0 || got.ScrollWidth > 390 {
		t.Errorf("style: quota bar %vpx wide, page %vpx on a 390px phone, CSP complaints %v", got.BarWidth, got.ScrollWidth, got.CSP)
	}
	if got.HTTPSStatus != 200 || got.HTTPSProtocol != "h2" || !strings.Contains(got.HTTPSText, "600.0 KiB") {
		t.Errorf("over HTTPS: %d via %q:\n%s", got.HTTPSStatus, got.HTTPSProtocol, got.HTTPSText)
	}

	// Chromium without a login would ask for one; curl shows what it got.
	for _, login := range [][]string{nil, {"-u", "alice:wr0ng"}, {"-u", "bob:wr0ng"}} {
		args := append([]string{"-i", "http://" + d.listen + "/my-usage"}, login...)
		if got, _ := curlArgs(t, args...); !strings.HasPrefix(got, "HTTP/1.1 401") ||
			!strings.Contains(got, `WWW-Authenticate: Basic realm="sockshaper"`) || strings.Contains(got, "KiB") {
			t.Errorf("curl %v: %q, want 401 with a Basic challenge and no data", login, got)
		}
	}
	d.waitMetricAbove(`sockshaper_sessions_total{app="other",command="none",front="http",result="ok"}`, 0)
	d.waitMetricAbove(`sockshaper_sessions_total{app="other",command="none",front="http2",result="ok"}`, 0)

	strict, strictTLS := myUsageDaemon(t, strings.Replace(myUsageConfig, "auth: {users_file: users.htpasswd}",
		"auth: {users_file: users.htpasswd, require_tls: true}", 1))
	refused, _ := curlArgs(t, "-w", " %{http_code}", "-u", "alice:"+password, "http://"+strict.listen+"/my-usage")
	if !strings.HasSuffix(refused, " 403") || !strings.Contains(refused, "https://"+strictTLS+"/my-usage") || strings.Contains(refused, "KiB") {
		t.Errorf("under require_tls, the plaintext listener answered %q; want 403 naming https://%s/my-usage", refused, strictTLS)
	}
}

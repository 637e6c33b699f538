package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/testca"
)

// nssHome makes a home folder whose NSS database (the one Chromium reads,
// $HOME/.pki/nssdb) trusts ca, and returns it.
func nssHome(t *testing.T, caFile string) string {
	t.Helper()
	certutil := requireTool(t, "certutil", "libnss3-tools")
	home := t.TempDir()
	db := "sql:" + filepath.Join(home, ".pki", "nssdb")
	os.MkdirAll(filepath.Join(home, ".pki", "nssdb"), 0o700)
	for _, args := range [][]string{
		{"-d", db, "-N", "--empty-password"},
		{"-d", db, "-A", "-t", "C,,", "-n", "sockshaper test CA", "-i", caFile},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	return home
}

// originsPage serves, over TLS with a certificate of ca for names, a page that
// loads a script from each of n other origins (the same names, other ports);
// each script marks the page, so the DOM shows which arrived. It returns the
// page's port.
func originsPage(t *testing.T, ca *testca.CA, name string, n int) string {
	t.Helper()
	pair := ca.Server(t, time.Hour, name, "127.0.0.1")
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(h http.Handler) string {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: h}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		return port
	}
	var scripts strings.Builder
	for i := range n {
		port := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/javascript")
			fmt.Fprintf(w, `document.getElementById("msg").textContent += " origin%d";`, i)
		}))
		fmt.Fprintf(&scripts, `<script src="https://%s:%s/s.js"></script>`, name, port)
	}
	return serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><title>campus</title><p id=msg>page</p>%s`, scripts.String())
	}))
}

// httpsNoAuthDaemon is a loopback-only daemon without a users file, with an
// HTTPS listener whose certificate covers proxy.test; it returns it, the TLS
// listener's address, the CA and the CA's file.
func httpsNoAuthDaemon(t *testing.T, extra string) (*process, string, *testca.CA, string) {
	t.Helper()
	ca := testca.New(t, "sockshaper test CA")
	dir := t.TempDir()
	ca.Server(t, 24*time.Hour, "proxy.test", "127.0.0.1").Write(t, dir, "proxy")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	d := startDaemonAt(t, dir, nil, noAuthConfig+"tls: {listen: 127.0.0.1:0, cert_file: proxy.pem, key_file: proxy.key}\n"+extra, "")
	addr, _ := d.records("serving")[0]["tls_listen"].(string)
	return d, addr, ca, caFile
}

// TestChromiumThroughHTTPSProxy: headless Chromium with an HTTPS proxy
// (--proxy-server=https://, and a PAC file saying HTTPS), trusting the proxy's
// CA through its NSS database, loads a page whose scripts come from three other
// origins; it speaks HTTP/2 to the proxy and carries the tunnels as streams of
// one connection.
func TestChromiumThroughHTTPSProxy(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	d, addr, ca, caFile := httpsNoAuthDaemon(t, "http: {pac: {proxy_host: proxy.test}}\n")
	_, tlsPort, _ := net.SplitHostPort(addr)
	home := nssHome(t, caFile)
	name := loopbackName(t)
	page := originsPage(t, ca, name, 3)
	run := func(flags ...string) string {
		t.Helper()
		cmd := exec.Command(chromium, append(append(chromiumFlags(t), flags...),
			"--host-resolver-rules=MAP proxy.test 127.0.0.1", "--dump-dom", "https://"+name+":"+page+"/page")...)
		cmd.Env = append(os.Environ(), "HOME="+home)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium: %v\n%s", err, out)
		}
		return string(out)
	}
	for _, via := range []struct {
		name  string
		flags []string
	}{
		{"--proxy-server", []string{"--proxy-server=https://proxy.test:" + tlsPort}},
		{"PAC", []string{"--proxy-pac-url=http://" + d.listen + "/proxy.pac"}},
	} {
		before := d.metric(`sockshaper_http2_streams_per_connection_count`)
		dom := run(via.flags...)
		if !strings.Contains(dom, "page origin0 origin1 origin2") {
			t.Errorf("%s: the page and its three scripts did not all come through the HTTPS proxy: %s", via.name, dom)
		}
		// Chromium's connection to the proxy closes when it exits.
		d.waitMetric(`sockshaper_http2_connections_active`, 0)
		conns := d.metric(`sockshaper_http2_streams_per_connection_count`) - before
		streams := d.metric(`sockshaper_http2_streams_per_connection_sum`)
		t.Logf("%s: %v HTTP/2 connections so far carried %v streams", via.name, conns, streams)
		if conns < 1 {
			t.Errorf("%s: Chromium did not speak HTTP/2 to the proxy", via.name)
		}
	}
	// One connection carried several tunnels: some connection had more than 2.
	if le2, all := d.metric(`sockshaper_http2_streams_per_connection_bucket{le="2"}`),
		d.metric(`sockshaper_http2_streams_per_connection_count`); le2 >= all {
		t.Errorf("no HTTP/2 connection carried more than 2 streams (%v of %v carried at most 2)", le2, all)
	}
	var tunnels int
	for _, l := range d.records("session") {
		if l["front"] == "http2" && l["command"] == "connect" && l["result"] == "ok" {
			tunnels++
		}
	}
	if tunnels < 8 {
		t.Errorf("%d HTTP/2 tunnels in the accounting lines, want the page and its 3 origins twice", tunnels)
	}
}

// TestFirefoxThroughHTTPSProxyPAC: Firefox ESR, headless, with a PAC file
// that names the HTTPS proxy first, trusting the proxy's CA in its profile,
// loads a page through it.
func TestFirefoxThroughHTTPSProxyPAC(t *testing.T) {
	firefox := requireTool(t, "firefox-esr", "firefox-esr")
	certutil := requireTool(t, "certutil", "libnss3-tools")
	d, _, ca, caFile := httpsNoAuthDaemon(t, "http: {pac: {proxy_host: proxy.test}}\n")
	name := loopbackName(t)
	page := originsPage(t, ca, name, 1)
	profile := t.TempDir()
	db := "sql:" + profile
	for _, args := range [][]string{
		{"-d", db, "-N", "--empty-password"},
		{"-d", db, "-A", "-t", "C,,", "-n", "sockshaper test CA", "-i", caFile},
	} {
		if out, err := exec.Command(certutil, args...).CombinedOutput(); err != nil {
			t.Fatalf("certutil %v: %v\n%s", args, err, out)
		}
	}
	writeFile(t, filepath.Join(profile, "user.js"), fmt.Sprintf(`
user_pref("network.proxy.type", 2);
user_pref("network.proxy.autoconfig_url", "http://%s/proxy.pac");
user_pref("network.proxy.allow_hijacking_localhost", true);
user_pref("network.dns.localDomains", "proxy.test");
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("app.update.enabled", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
`, d.listen))
	shot := filepath.Join(t.TempDir(), "page.png")
	cmd := exec.Command(firefox, "--headless", "--no-remote", "--profile", profile, "--screenshot", shot,
		"https://"+name+":"+page+"/page")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "MOZ_DISABLE_CONTENT_SANDBOX=1")
	if os.Getenv("FFLOG") != "" {
		cmd.Env = append(cmd.Env, "MOZ_LOG=nsHttp:5,nsSocketTransport:5", "MOZ_LOG_FILE="+os.Getenv("FFLOG"))
	}
	done := make(chan error, 1)
	var out []byte
	go func() { var err error; out, err = cmd.CombinedOutput(); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("firefox: %v\n%s", err, out)
		}
	case <-time.After(120 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("firefox did not finish in 120 s\n%s", out)
	}
	if _, err := os.Stat(shot); err != nil {
		t.Fatalf("firefox took no screenshot: %v\n%s", err, out)
	}
	var ok bool
	for _, l := range d.records("session") {
		dst, _ := l["destination"].(string)
		if strings.HasSuffix(dst, ":"+page) && l["result"] == "ok" && (l["front"] == "https" || l["front"] == "http2") {
			ok = true
		}
	}
	if !ok {
		t.Errorf("no tunnel to the page through the HTTPS proxy in the accounting lines:\n%s\nfirefox said:\n%s", d.logText(), out)
	}
}

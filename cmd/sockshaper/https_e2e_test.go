package main

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/sockshaper/sockshaper/internal/testca"
)

// httpsDaemon starts the daemon with a TLS listener on 127.0.0.1 whose
// certificate, from a fresh CA, covers proxy.test and 127.0.0.1; extra is
// appended to the config, and replaces its auth line when it has one. It
// returns the daemon, the TLS listener's address, the CA and the daemon's
// folder (where proxy.pem, proxy.key and ca.pem are).
func httpsDaemon(t *testing.T, extra string) (*process, string, *testca.CA, string) {
	t.Helper()
	ca := testca.New(t, "sockshaper test CA")
	dir := t.TempDir()
	ca.Server(t, 24*time.Hour, "proxy.test", "127.0.0.1").Write(t, dir, "proxy")
	ca.WriteCA(t, dir, "ca.pem")
	config := baseConfig
	if strings.HasPrefix(extra, "auth:") {
		config = strings.Replace(config, "auth: {users_file: users.htpasswd}\n", "", 1)
	}
	d := startDaemonAt(t, dir, nil, config+"tls: {listen: 127.0.0.1:0, cert_file: proxy.pem, key_file: proxy.key}\n"+extra, usersFile())
	addr, _ := d.records("serving")[0]["tls_listen"].(string)
	if addr == "" {
		t.Fatalf("no tls_listen in the serving line:\n%s", d.logText())
	}
	return d, addr, ca, dir
}

// curlVia runs curl through proxyURL with args, and returns its output and
// exit code.
func curlVia(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := requireTool(t, "curl", "curl")
	out, err := exec.Command(bin, append([]string{"-sS", "--max-time", "10"}, args...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// TestHTTPSProxyWithCurl: curl speaks TLS to the proxy (-x https://) and
// forwards and tunnels through it, the password never in the clear; a client
// that does not trust the certificate fails and the proxy counts why; the
// accounting lines name the https front.
func TestHTTPSProxyWithCurl(t *testing.T) {
	d, addr, _, dir := httpsDaemon(t, "")
	target := helloServer(t)
	proxyURL := "https://alice:" + strings.ReplaceAll(password, " ", "%20") + "@" + addr
	caFile := filepath.Join(dir, "ca.pem")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"forward", []string{"-x", proxyURL, "--proxy-cacert", caFile, target.URL + "/forwarded"}},
		{"CONNECT", []string{"-p", "-x", proxyURL, "--proxy-cacert", caFile, target.URL + "/tunnelled"}},
	} {
		out, code := curlVia(t, tc.args...)
		want := "hello from /" + map[string]string{"forward": "forwarded", "CONNECT": "tunnelled"}[tc.name]
		if code != 0 || out != want {
			t.Errorf("%s through the HTTPS proxy: exit %d, %q; want %q", tc.name, code, out, want)
		}
	}
	other := testca.New(t, "another CA")
	otherFile := other.WriteCA(t, t.TempDir(), "other.pem")
	if out, code := curlVia(t, "-x", proxyURL, "--proxy-cacert", otherFile, target.URL+"/"); code == 0 {
		t.Errorf("curl trusting another CA got through: %q", out)
	}
	d.waitMetric(`sockshaper_tls_handshake_failures_total{reason="client_rejected"}`, 1)
	waitForRecord(t, d, "session")
	fronts := map[string]int{}
	for _, rec := range d.records("session") {
		fronts[fmt.Sprint(rec["front"], " ", rec["command"], " ", rec["result"])]++
	}
	if fronts["https request ok"] != 1 || fronts["https connect ok"] != 1 {
		t.Errorf("accounting lines by front, command and result: %v; want one https request and one https connect", fronts)
	}
	if d.metric(`sockshaper_tls_certificate_expiry_timestamp_seconds`) < float64(time.Now().Unix()) {
		t.Error("certificate expiry gauge is not in the future")
	}
}

// TestHTTPSCertificateRotation: a certificate replaced on disk is served to
// the next connection, without a signal, while a download that started before
// goes on; a broken pair keeps the one in use and is counted.
func TestHTTPSCertificateRotation(t *testing.T) {
	d, addr, ca, dir := httpsDaemon(t, "")
	pool := ca.Pool
	serialNow := func() string {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "proxy.test"})
		if err != nil {
			t.Fatalf("TLS to the proxy: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serialNow()

	// A tunnel carrying a paced stream through the HTTPS proxy.
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "proxy.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	fmt.Fprintf(tc, "CONNECT %s HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic %s\r\n\r\n", counterServer(t), basicAuth("alice", password))
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v, %v", resp, err)
	}
	stream := readCounters(&bufferedConn{Conn: tc, r: br})

	ca.Server(t, 48*time.Hour, "proxy.test", "127.0.0.1").Write(t, dir, "proxy")
	deadline := time.Now().Add(15 * time.Second)
	after := serialNow()
	for after == before && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		after = serialNow()
	}
	if after == before {
		t.Fatal("the proxy still serves the old certificate 15 s after the files changed")
	}
	// A half-written renewal (a key that does not match) keeps the new pair.
	writeFile(t, filepath.Join(dir, "proxy.key"), string(ca.Client(t, "x").KeyPEM))
	d.waitMetricAtLeast(`sockshaper_tls_certificate_load_failures_total`, 1)
	if got := serialNow(); got != after {
		t.Errorf("after a broken renewal the proxy serves certificate %s, want %s kept", got, after)
	}
	got := stream.received.Load()
	time.Sleep(time.Second)
	if err := stream.failure(); err != nil || stream.received.Load() == got {
		t.Errorf("download across the rotation: err %v, %d bytes then %d", err, got, stream.received.Load())
	}
}

// bufferedConn reads through r what a bufio.Reader already holds of Conn.
type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestRequireTLS: with auth.require_tls, the plaintext port offers SOCKS5
// clients no method that carries a password and answers HTTP clients 403
// naming the HTTPS proxy (never 407, which would make a browser send the
// password); over TLS both log in, SOCKS5 inside TLS too.
func TestRequireTLS(t *testing.T) {
	d, addr, ca, dir := httpsDaemon(t, "auth: {users_file: users.htpasswd, require_tls: true}\n")
	_ = dir
	echo := echoServer(t)

	c, err := net.Dial("tcp", d.listen)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write([]byte{5, 2, 0, 2})
	reply := make([]byte, 2)
	if _, err := io.ReadFull(c, reply); err != nil || reply[1] != 0xFF {
		t.Errorf("plaintext SOCKS5 greeting answered %x, %v; want 05ff (no acceptable method)", reply, err)
	}
	c.Close()

	resp := proxyRequest(t, d.listen, "GET http://"+echo+"/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Basic "+basicAuth("alice", password)+"\r\n\r\n")
	body, _ := io.ReadAll(resp.Body)
	_, port, _ := net.SplitHostPort(addr)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "https://127.0.0.1:"+port) {
		t.Errorf("plaintext HTTP with a password: %s %q; want 403 naming https://127.0.0.1:%s", resp.Status, body, port)
	}
	if resp.Header.Get("Proxy-Authenticate") != "" {
		t.Error("plaintext HTTP under require_tls offered a password challenge")
	}

	tlsDialer := tlsForward{cfg: &tls.Config{RootCAs: ca.Pool, ServerName: "proxy.test"}}
	socks, err := xproxy.SOCKS5("tcp", addr, &xproxy.Auth{User: "alice", Password: password}, tlsDialer)
	if err != nil {
		t.Fatal(err)
	}
	tunnel, err := socks.Dial("tcp", echo)
	if err != nil {
		t.Fatalf("SOCKS5 inside TLS: %v", err)
	}
	tunnel.SetDeadline(time.Now().Add(10 * time.Second))
	roundTrip(t, tunnel, "socks inside tls")
	tunnel.Close()
	out, code := curlVia(t, "-x", "https://alice:"+strings.ReplaceAll(password, " ", "%20")+"@"+addr,
		"--proxy-cacert", filepath.Join(dir, "ca.pem"), helloServer(t).URL+"/tls")
	if code != 0 || out != "hello from /tls" {
		t.Errorf("HTTPS proxy under require_tls: exit %d, %q", code, out)
	}
	waitForRecord(t, d, "session")
	var socksTLS int
	for _, rec := range d.records("session") {
		if rec["front"] == "socks5_tls" && rec["result"] == "ok" {
			socksTLS++
		}
	}
	if socksTLS != 1 {
		t.Errorf("%d socks5_tls sessions, want 1", socksTLS)
	}
}

// tlsForward dials TLS connections, as a forward dialer for x/net/proxy's
// SOCKS5 client.
type tlsForward struct{ cfg *tls.Config }

func (f tlsForward) Dial(network, addr string) (net.Conn, error) {
	return tls.Dial(network, addr, f.cfg)
}

// TestCheckConfigTLS: check-config loads the pair as a start would, lists the
// certificate, fails naming the file when it does not load and naming the PAC
// name the certificate does not cover, and warns when it expires within 14
// days.
func TestCheckConfigTLS(t *testing.T) {
	ca := testca.New(t, "ca")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	run := func(tlsPart string) (string, int) {
		config := filepath.Join(dir, "sockshaper.yaml")
		writeFile(t, config, baseConfig+tlsPart)
		return runCommand(t, "", "check-config", config)
	}
	ca.Server(t, 90*24*time.Hour, "proxy.test").Write(t, dir, "good")
	ca.Server(t, 3*24*time.Hour, "proxy.test").Write(t, dir, "soon")
	for _, tc := range []struct {
		name, tls string
		code      int
		want      []string
	}{
		{"good", "tls: {listen: 127.0.0.1:0, cert_file: good.pem, key_file: good.key}\n", 0, []string{"tls: 127.0.0.1:0 serves CN=proxy.test", "[proxy.test]"}},
		{"missing", "tls: {listen: 127.0.0.1:0, cert_file: nope.pem, key_file: good.key}\n", 1, []string{"tls.cert_file", "nope.pem"}},
		{"no key", "tls: {listen: 127.0.0.1:0, cert_file: good.pem}\n", 1, []string{"tls.key_file: needed with tls.listen"}},
		{"mismatched", "tls: {listen: 127.0.0.1:0, cert_file: good.pem, key_file: soon.key}\n", 1, []string{"private key does not match"}},
		{"PAC name not covered", "tls: {listen: 127.0.0.1:0, cert_file: good.pem, key_file: good.key}\nhttp: {pac: {proxy_host: proxy.other.example}}\n", 1,
			[]string{`http.pac.proxy_host "proxy.other.example"`, "does not cover"}},
		{"expires soon", "tls: {listen: 127.0.0.1:0, cert_file: soon.pem, key_file: soon.key}\n", 0, []string{"warning: the TLS certificate expires soon"}},
		{"require_tls without TLS", "", 1, nil},
	} {
		part := tc.tls
		if tc.name == "require_tls without TLS" {
			part = ""
			config := filepath.Join(dir, "sockshaper.yaml")
			writeFile(t, config, strings.Replace(baseConfig, "auth: {users_file: users.htpasswd}", "auth: {users_file: users.htpasswd, require_tls: true}", 1))
			out, code := runCommand(t, "", "check-config", config)
			if code != 1 || !strings.Contains(out, "auth.require_tls: needs tls.listen") {
				t.Errorf("%s: exit %d: %s", tc.name, code, out)
			}
			continue
		}
		out, code := run(part)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d: %s", tc.name, code, tc.code, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q: %s", tc.name, w, out)
			}
		}
	}
}

// TestPACOffersTheHTTPSProxy: with a TLS listener the PAC file sends clients to
// the HTTPS proxy first and the plain one as the fallback, or to the HTTPS
// proxy alone under auth.require_tls; the name is http.pac.proxy_host's, which
// the certificate covers.
func TestPACOffersTheHTTPSProxy(t *testing.T) {
	for _, tc := range []struct {
		extra, want string
	}{
		{"http: {pac: {proxy_host: proxy.test}}\n", `"HTTPS proxy.test:%s; PROXY proxy.test:%s"`},
		{"auth: {users_file: users.htpasswd, require_tls: true}\nhttp: {pac: {proxy_host: proxy.test}}\n", `"HTTPS proxy.test:%s"`},
	} {
		d, addr, _, _ := httpsDaemon(t, tc.extra)
		_, tlsPort, _ := net.SplitHostPort(addr)
		_, plainPort, _ := net.SplitHostPort(d.listen)
		want := fmt.Sprintf(tc.want, tlsPort, plainPort)
		if strings.Count(tc.want, "%s") == 1 {
			want = fmt.Sprintf(tc.want, tlsPort)
		}
		for _, via := range []string{"plain", "tls"} {
			var resp *http.Response
			if via == "plain" {
				resp = proxyRequest(t, d.listen, "GET /proxy.pac HTTP/1.1\r\nHost: proxy.test:"+plainPort+"\r\n\r\n")
			} else {
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(c, "GET /proxy.pac HTTP/1.1\r\nHost: proxy.test:%s\r\n\r\n", plainPort)
				if resp, err = http.ReadResponse(bufio.NewReader(c), nil); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			body, _ := io.ReadAll(resp.Body)
			if !strings.Contains(string(body), want) {
				t.Errorf("%q over %s: PAC lacks %s:\n%s", tc.extra, via, want, body)
			}
		}
	}
}

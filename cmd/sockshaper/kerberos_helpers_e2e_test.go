package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/kdctest"
)

// The proxy's service principals in the binary's tests: the name clients
// reach it by is proxy.test (curl --resolve, Chromium --host-resolver-rules).
const (
	proxyHTTPService  = "HTTP/proxy.test"
	proxySOCKSService = "rcmd/proxy.test"
)

// krbProxy is a KDC with the proxy's principals and a daemon folder holding
// their keytab (proxy.keytab).
type krbProxy struct {
	k      *kdctest.KDC
	dir    string
	keytab string
}

// startKrbProxy starts the test KDC, adds the proxy's principals for
// proxy.test and exports their keys into dir/proxy.keytab.
func startKrbProxy(t *testing.T) *krbProxy {
	t.Helper()
	k := kdctest.Start(t)
	k.Kadmin(kdctest.Realm, "addprinc -randkey "+proxyHTTPService, "addprinc -randkey "+proxySOCKSService)
	p := &krbProxy{k: k, dir: t.TempDir()}
	p.keytab = filepath.Join(p.dir, "proxy.keytab")
	k.Keytab(p.keytab, proxyHTTPService, proxySOCKSService)
	return p
}

// kerberosBlock is auth.kerberos for the proxy's keytab, indented under auth.
const kerberosBlock = `  kerberos:
    keytab_file: proxy.keytab
    service_names: [HTTP/proxy.test, rcmd/proxy.test]
    realms: [CAMPUS.EXAMPLE]
`

// krbConfig is a daemon config with the users file (alice's password) and
// Kerberos, alice in the staff group by shaping.members; extra is appended.
func krbConfig(extra string) string { return krbConfigAuth("", extra) }

// krbConfigAuth is krbConfig with authExtra (indented keys) added under auth.
func krbConfigAuth(authExtra, extra string) string {
	return `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth:
  users_file: users.htpasswd
` + authExtra + kerberosBlock + `access:
  client_networks: [127.0.0.0/8]
  deny_destinations: [private, link-local, metadata, 127.0.0.2/32]
timeouts: {handshake: 5s, dial: 2s, idle: 30s, drain: 2s}
shaping:
  default_group: students
  members: {alice: staff}
  groups:
    staff: {upload: 0, download: 0}
    students: {upload: 0, download: 0}
` + extra
}

// start runs the daemon on config in p's folder (users: alice's password).
func (p *krbProxy) start(t *testing.T, config string) *process {
	t.Helper()
	return startDaemonAt(t, p.dir, nil, config, usersFile())
}

// curlNegotiate runs curl --proxy-negotiate as the owner of ccache (MIT
// libgssapi, the KDC's krb5.conf) through the proxy at proxy.test:port with
// args, and returns the body, the last status curl printed and its exit code.
func (p *krbProxy) curlNegotiate(t *testing.T, ccache, proxyURL string, prefix []string, args ...string) (string, int, int) {
	t.Helper()
	bin := requireTool(t, "curl", "curl")
	u := strings.TrimPrefix(strings.TrimPrefix(proxyURL, "http://"), "https://")
	_, port, _ := net.SplitHostPort(u)
	argv := append(prefix, append([]string{bin, "-sS", "--max-time", "20", "-x", proxyURL, "--resolve",
		"proxy.test:" + port + ":127.0.0.1", "--proxy-negotiate", "-U", ":", "-w", "\n%{http_code}"}, args...)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = p.k.Env(ccache)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	i := strings.LastIndex(text, "\n")
	var status int
	fmt.Sscan(text[i+1:], &status)
	body := text[:max(i, 0)]
	t.Logf("curl %s: exit %d, status %d, %q", strings.Join(args, " "), code, status, body)
	return body, status, code
}

// negotiateHeader is the Proxy-Authorization value of a Negotiate token.
func negotiateHeader(token []byte) string {
	return "Negotiate " + base64.StdEncoding.EncodeToString(token)
}

// rawRequest sends one HTTP/1.1 request head on c and reads the response
// head and body.
func rawRequest(t *testing.T, c net.Conn, br *bufio.Reader, head string) *http.Response {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, head); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response to %q: %v", strings.SplitN(head, "\r\n", 2)[0], err)
	}
	return resp
}

// readBody reads and closes a response's body.
func readBody(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b)
}

// sessionLines returns the accounting lines whose user and close reason match
// (either "" for any).
func (d *process) sessionLines(user, reason string) []map[string]any {
	var out []map[string]any
	for _, r := range d.records("session") {
		if (user == "" || r["user"] == user) && (reason == "" || r["close_reason"] == reason) {
			out = append(out, r)
		}
	}
	return out
}

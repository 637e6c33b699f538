package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	xproxy "golang.org/x/net/proxy"
)

const password = "s3cret pass"

// baseConfig lets tests reach their own loopback servers; 127.0.0.2 stands for a
// denied range.
const baseConfig = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth: {users_file: users.htpasswd}
access:
  client_networks: [127.0.0.0/8]
  deny_destinations: [private, link-local, metadata, 127.0.0.2/32]
timeouts: {handshake: 1s, dial: 2s, idle: 30s, drain: 2s}
`

var usersFile = sync.OnceValue(func() string { return users("alice") })

// users writes a users file at bcrypt's lowest cost: the binary is built with the
// race detector, under which the default cost takes seconds per login.
func users(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			panic(err)
		}
		b.WriteString(n + ":" + string(hash) + "\n")
	}
	return b.String()
}

// helloServer is a local HTTP target.
func helloServer(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.URL.Path)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// curl runs curl through the proxy and returns its output and exit code.
func curl(t *testing.T, proxyURL, url string) (string, int) {
	t.Helper()
	bin := requireTool(t, "curl", "curl")
	cmd := exec.Command(bin, "-sS", "--max-time", "10", "--proxy", proxyURL, url)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func TestCurlThroughProxy(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	web := helloServer(t)
	port := web.URL[strings.LastIndex(web.URL, ":")+1:]
	good := "socks5h://alice:" + strings.ReplaceAll(password, " ", "%20") + "@" + d.listen

	out, code := curl(t, good, "http://localhost:"+port+"/campus")
	if code != 0 || out != "hello from /campus" {
		t.Fatalf("curl by name: exit %d, %q", code, out)
	}
	out, code = curl(t, good, "http://127.0.0.1:"+port+"/by-ip")
	if code != 0 || out != "hello from /by-ip" {
		t.Fatalf("curl by IP: exit %d, %q", code, out)
	}
	if out, code = curl(t, "socks5h://alice:wr0ng-guess@"+d.listen, web.URL); code == 0 {
		t.Errorf("wrong password: curl succeeded: %q", out)
	}
	if out, code = curl(t, good, "http://127.0.0.2:"+port+"/"); code == 0 || !strings.Contains(out, "(2)") {
		t.Errorf("denied destination: exit %d, %q; want reply code 2 (not allowed)", code, out)
	}
	d.waitMetric(`sockshaper_sessions_total{app="other",command="connect",front="socks5",result="ok"}`, 2)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="none",front="socks5",result="auth_failed"}`, 1)
	d.waitMetric(`sockshaper_sessions_total{app="other",command="connect",front="socks5",result="destination_denied"}`, 1)
	d.waitMetric(`sockshaper_auth_attempts_total{result="ok"}`, 3)
	d.waitMetric(`sockshaper_auth_attempts_total{result="failed"}`, 1)
	if v := d.metric(`sockshaper_transferred_bytes_total{app="other",direction="download",transport="tcp"}`); v <= 0 {
		t.Errorf("download bytes = %v, want > 0", v)
	}
	if body := httpGet(t, "http://"+d.admin+"/metrics"); strings.Contains(body, password) || strings.Contains(body, "wr0ng-guess") {
		t.Error("a password appears in /metrics")
	}
	for _, rec := range d.records("session") {
		if strings.Contains(fmt.Sprint(rec), password) {
			t.Error("a password appears in the log")
		}
	}
}

func TestEmbeddedDefaultConfig(t *testing.T) {
	// The embedded default listens on the fixed 127.0.0.1:1080 and 127.0.0.1:9180
	// (by design: it must work with no flag); skip the run (not the check) when
	// something else holds either port on a developer machine, and fail in CI.
	out, code := runCommand(t, "", "check-config")
	if code != 0 || !strings.Contains(out, "embedded default: ok") {
		t.Fatalf("check-config on the embedded default: %d %q", code, out)
	}
	for _, addr := range []string{"127.0.0.1:1080", "127.0.0.1:9180"} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			skipOutsideCI(t, "%s busy, so the embedded default cannot start: %v", addr, err)
		}
		ln.Close()
	}
	d := startDaemon(t, "", "")
	if d.listen != "127.0.0.1:1080" || d.admin != "127.0.0.1:9180" {
		t.Fatalf("default listens on %s and %s", d.listen, d.admin)
	}
	c, err := net.Dial("tcp", d.listen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	// No users file: no-auth is accepted, and loopback destinations are denied.
	c.Write([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	got := make([]byte, 12)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got[:4], []byte{5, 0, 5, 2}) {
		t.Fatalf("default config: reply %x, %v; want no-auth then 0x02 for a loopback destination", got, err)
	}
	if _, code := httpGetStatus(t, "http://"+d.admin+"/readyz"); code != 200 {
		t.Errorf("/readyz = %d", code)
	}
}

// runCommand runs the binary with args and stdin, returning output and exit code.
func runCommand(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, baseConfig)
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	if out, code := runCommand(t, "", "check-config", "-config", good); code != 0 || !strings.Contains(out, "ok (1 users") {
		t.Errorf("good config: exit %d, %q", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	writeFile(t, bad, "listen: 127.0.0.1:1080\nshaping:\n  groups:\n    students: {upload: 4Mbps}\n")
	out, code := runCommand(t, "", "check-config", "-config", bad)
	if code != 1 || !strings.Contains(out, bad+":4: shaping.groups.students.upload:") {
		t.Errorf("bad config: exit %d, %q; want exit 1 naming file, line 4 and the field", code, out)
	}
	missing := filepath.Join(dir, "nousers.yaml")
	writeFile(t, missing, "auth: {users_file: absent.htpasswd}\n")
	if out, code := runCommand(t, "", "check-config", "-config", missing); code != 1 || !strings.Contains(out, "auth.users_file") {
		t.Errorf("missing users file: exit %d, %q", code, out)
	}
}

func TestPasswd(t *testing.T) {
	out, code := runCommand(t, "wonderland\n", "passwd", "alice")
	line := strings.TrimSpace(out)
	user, hash, _ := strings.Cut(line, ":")
	if code != 0 || user != "alice" || !strings.HasPrefix(hash, "$2y$") {
		t.Fatalf("passwd: exit %d, %q", code, out)
	}
	// x/crypto/bcrypt reads $2y$ as $2a$: the same algorithm.
	if bcrypt.CompareHashAndPassword([]byte(strings.Replace(hash, "$2y$", "$2a$", 1)), []byte("wonderland")) != nil {
		t.Error("printed hash does not verify")
	}
	if _, code := runCommand(t, "", "passwd", "alice"); code != 1 {
		t.Errorf("empty password: exit %d, want 1", code)
	}
	if out, code := runCommand(t, "", "version"); code != 0 || !strings.HasPrefix(out, "sockshaper ") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestHandshakeTimeoutAndClientRefusalAndLimits(t *testing.T) {
	cfg := `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth: {users_file: users.htpasswd}
access: {client_networks: [127.0.0.1/32], deny_destinations: [127.0.0.2/32]}
timeouts: {handshake: 500ms, dial: 2s, idle: 30s, drain: 2s}
limits: {max_sessions: 100, max_sessions_per_client_ip: 2, max_sessions_per_user: 1}
`
	d := startDaemon(t, cfg, users("alice", "bob"))
	// A silent client is closed at the handshake deadline.
	silent, err := net.Dial("tcp", d.listen)
	if err != nil {
		t.Fatal(err)
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(silent); err != nil {
		t.Errorf("silent client not closed: %v", err)
	}
	silent.Close()
	// A client outside client_networks is closed before any byte.
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}
	outside, err := dialer.Dial("tcp", d.listen)
	if err != nil {
		t.Fatal(err)
	}
	outside.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(outside); err != nil || len(b) != 0 {
		t.Errorf("outside client: %x, %v", b, err)
	}
	outside.Close()
	d.waitMetric(`sockshaper_sessions_total{app="other",command="none",front="none",result="client_denied"}`, 1)

	echoAddr := echoServer(t)
	first := dialThrough(t, d.listen, "alice", echoAddr)
	defer first.Close()
	if c, err := socksDialer(t, d.listen, "alice").Dial("tcp", echoAddr); err == nil {
		c.Close()
		t.Error("second session of alice accepted over max_sessions_per_user 1")
	}
	// The refused session's slot of 127.0.0.1 is free once it shows as ended; the
	// client sees the refusal before that.
	d.waitMetric(`sockshaper_sessions_total{app="other",command="connect",front="socks5",result="limit_reached"}`, 1)
	// The per-address cap counts established sessions, and answers after the
	// handshake: bob's is the second of 127.0.0.1, a third is refused.
	second := dialThrough(t, d.listen, "bob", echoAddr)
	defer second.Close()
	if c, err := socksDialer(t, d.listen, "bob").Dial("tcp", echoAddr); err == nil {
		c.Close()
		t.Error("third session of 127.0.0.1 accepted over max_sessions_per_client_ip 2")
	}
	d.waitMetric(`sockshaper_sessions_total{app="other",command="connect",front="socks5",result="limit_reached"}`, 2)
}

// echoServer echoes every connection on 127.0.0.1.
func echoServer(t *testing.T) string { return echoServerOn(t, "127.0.0.1:0") }

func socksDialer(t *testing.T, proxyAddr, user string) xproxy.Dialer {
	d, err := xproxy.SOCKS5("tcp", proxyAddr, &xproxy.Auth{User: user, Password: password}, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func dialThrough(t *testing.T, proxyAddr, user, target string) net.Conn {
	t.Helper()
	c, err := socksDialer(t, proxyAddr, user).Dial("tcp", target)
	if err != nil {
		t.Fatalf("%s via proxy: %v", user, err)
	}
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != msg {
		t.Fatalf("round trip: %q, %v", buf, err)
	}
}

func TestReloadKeepsSessionsAndRejectsBadConfig(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	echoAddr := echoServer(t)
	live := dialThrough(t, d.listen, "alice", echoAddr)
	defer live.Close()
	roundTrip(t, live, "before")

	// A new user appears with the reloaded users file.
	writeFile(t, filepath.Join(d.dir, "users.htpasswd"), users("alice", "bob"))
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)
	dialThrough(t, d.listen, "bob", echoAddr).Close()

	// A broken config is refused and the running one stays.
	writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"), baseConfig+"limits: {max_sessions: -1}\n")
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="error"}`, 1)
	if recs := d.records("reload failed; keeping the running config"); len(recs) != 1 || !strings.Contains(fmt.Sprint(recs[0]["err"]), "limits.max_sessions") {
		t.Errorf("reload error not logged with the field: %v", recs)
	}
	// So does a broken users file.
	writeFile(t, filepath.Join(d.dir, "sockshaper.yaml"), baseConfig)
	writeFile(t, filepath.Join(d.dir, "users.htpasswd"), "bob:plaintext\n")
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="error"}`, 2)
	dialThrough(t, d.listen, "bob", echoAddr).Close()
	roundTrip(t, live, "after") // the session that started before every reload lives on
}

func TestSIGTERMDrains(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	echoAddr := echoServer(t)
	live := dialThrough(t, d.listen, "alice", echoAddr)
	defer live.Close()
	d.signal(syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, code := httpGetStatus(t, "http://"+d.admin+"/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after SIGTERM", code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c, err := net.Dial("tcp", d.listen); err == nil {
		c.Close()
		t.Error("new connection accepted while draining")
	}
	roundTrip(t, live, "draining") // sessions continue during the drain
	if code := d.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit code %d after drain, want 0", code)
	}
	// A session the drain cut must look cut to the client (a reset), never like
	// a transfer that ended (EOF).
	live.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(live); !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("session when the drain time ran out: read error %v, want a reset", err)
	}
}

func TestAccessLogFileReopensOnSIGHUP(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	d := startDaemon(t, baseConfig, usersFile(), "-access-log", logPath)
	echoAddr := echoServer(t)
	c := dialThrough(t, d.listen, "alice", echoAddr)
	roundTrip(t, c, "one")
	c.Close()
	waitFile(t, logPath, `"bytes_up":3`)
	if err := os.Rename(logPath, logPath+".1"); err != nil { // what logrotate does
		t.Fatal(err)
	}
	d.signal(syscall.SIGHUP)
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)
	c = dialThrough(t, d.listen, "alice", echoAddr)
	roundTrip(t, c, "second")
	c.Close()
	waitFile(t, logPath, `"bytes_up":6`)
}

func waitFile(t *testing.T, path, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not contain %s:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAccountingLineMatchesTraffic(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "access.log")
	d := startDaemon(t, baseConfig, usersFile(), "-access-log", logPath)
	// The target takes 1000 bytes, answers with 5000 and closes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.ReadFull(c, make([]byte, 1000))
		c.Write(bytes.Repeat([]byte("d"), 5000))
		c.Close()
	}()
	c := dialThrough(t, d.listen, "alice", ln.Addr().String())
	c.Write(bytes.Repeat([]byte("u"), 1000))
	got, _ := io.ReadAll(c)
	c.Close()
	if len(got) != 5000 {
		t.Fatalf("client received %d bytes, want 5000", len(got))
	}
	waitFile(t, logPath, `"msg":"session"`)
	b, _ := os.ReadFile(logPath)
	var rec map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(b), &rec); err != nil {
		t.Fatalf("accounting line is not one JSON record: %v\n%s", err, b)
	}
	want := map[string]any{
		"user": "alice", "command": "connect", "app": "other", "result": "ok",
		"destination": ln.Addr().String(), "dialled": ln.Addr().String(),
		"bytes_up": 1000.0, "bytes_down": 5000.0, "close_reason": "eof",
	}
	for k, v := range want {
		if rec[k] != v {
			t.Errorf("accounting %s = %v, want %v", k, rec[k], v)
		}
	}
	for _, k := range []string{"client", "duration", "throttled_up", "throttled_down", "session"} {
		if _, ok := rec[k]; !ok {
			t.Errorf("accounting line has no %s: %v", k, rec)
		}
	}
}

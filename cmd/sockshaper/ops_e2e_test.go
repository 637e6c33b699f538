package main

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBinaryHelpAndCheckConfigFile runs the built binary as the example config's
// header tells operators to.
func TestBinaryHelpAndCheckConfigFile(t *testing.T) {
	if out, code := runCommand(t, "", "-h"); code != 0 || !strings.Contains(out, "healthcheck") || !strings.Contains(out, "-access-log FILE") {
		t.Errorf("-h: exit %d, %q", code, out)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	writeFile(t, filepath.Join(dir, "sockshaper.yaml"), baseConfig)
	if out, code := runCommand(t, "", "check-config", filepath.Join(dir, "sockshaper.yaml")); code != 0 || !strings.Contains(out, "ok (1 users") {
		t.Errorf("check-config FILE: exit %d, %q", code, out)
	}
}

// freePort returns a port that can be bound on every address now, for a config
// that must name its admin port (healthcheck -config reads it from there). It
// is below the kernel's range of ephemeral ports: a port the kernel handed out
// for a listener on :0 is also one it may give the next outgoing connection of
// a test running alongside, and then the daemon's bind fails (seen in CI:
// "bind: address already in use").
func freePort(t *testing.T) string {
	first := 32768 // Linux's default start of net.ipv4.ip_local_port_range
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				first = n
			}
		}
	}
	if first <= 10000 {
		t.Fatalf("ephemeral ports start at %d: no port below them to choose", first)
	}
	for range 100 {
		port := 10000 + rand.IntN(first-10000)
		ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return fmt.Sprint(port)
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

func TestHealthcheck(t *testing.T) {
	port := freePort(t)
	cfg := strings.Replace(baseConfig, "admin_listen: 127.0.0.1:0", "admin_listen: 0.0.0.0:"+port, 1)
	d := startDaemon(t, cfg, usersFile())
	config := filepath.Join(d.dir, "sockshaper.yaml")
	if out, code := runCommand(t, "", "healthcheck", "-config", config); code != 0 || !strings.Contains(out, "ok: http://127.0.0.1:"+port+"/readyz") {
		t.Errorf("healthcheck -config (admin on 0.0.0.0, probed on loopback): exit %d, %q", code, out)
	}
	if out, code := runCommand(t, "", "healthcheck", "-url", "http://"+d.admin+"/readyz"); code != 0 {
		t.Errorf("healthcheck -url: exit %d, %q", code, out)
	}

	// Draining: /readyz answers 503, the check fails while the process still runs.
	live := dialThrough(t, d.listen, "alice", echoServer(t))
	defer live.Close()
	d.signal(syscall.SIGTERM)
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, code := runCommand(t, "", "healthcheck", "-config", config)
		if code == 1 && strings.Contains(out, "503") {
			break
		}
		if code != 0 || time.Now().After(deadline) {
			t.Fatalf("healthcheck while draining: exit %d, %q; want 1 with 503", code, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.waitExit(10 * time.Second)
	if out, code := runCommand(t, "", "healthcheck", "-config", config); code != 1 || !strings.Contains(out, "refused") {
		t.Errorf("healthcheck with nothing listening: exit %d, %q", code, out)
	}
}

func TestHealthcheckTimesOut(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	start := time.Now()
	out, code := runCommand(t, "", "healthcheck", "-url", slow.URL+"/readyz", "-timeout", "300ms")
	if code != 1 || !strings.Contains(out, "no answer within 300ms") {
		t.Errorf("slow endpoint: exit %d, %q", code, out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v with -timeout 300ms", took)
	}
	if out, code := runCommand(t, "", "healthcheck", "-config", writeConfig(t, "admin_listen: \"\"\n")); code != 1 || !strings.Contains(out, "admin_listen is empty") {
		t.Errorf("no admin server: exit %d, %q", code, out)
	}
}

// writeConfig writes a config file into a temp dir and returns its path.
func writeConfig(t *testing.T, content string) string {
	path := filepath.Join(t.TempDir(), "sockshaper.yaml")
	writeFile(t, path, content)
	return path
}

func TestReadyzURL(t *testing.T) {
	for admin, want := range map[string]string{
		"127.0.0.1:9180":   "http://127.0.0.1:9180/readyz",
		"0.0.0.0:9180":     "http://127.0.0.1:9180/readyz",
		":9180":            "http://127.0.0.1:9180/readyz",
		"[::]:9180":        "http://[::1]:9180/readyz",
		"[::1]:9181":       "http://[::1]:9181/readyz",
		"10.20.0.1:9180":   "http://10.20.0.1:9180/readyz",
		"admin.local:9180": "http://admin.local:9180/readyz",
	} {
		got, err := readyzURL(writeConfig(t, fmt.Sprintf("admin_listen: %q\n", admin)))
		if err != nil || got != want {
			t.Errorf("admin_listen %q: %q, %v; want %q", admin, got, err, want)
		}
	}
	if got, err := readyzURL(""); err != nil || got != "http://127.0.0.1:9180/readyz" {
		t.Errorf("embedded default: %q, %v", got, err)
	}
}

// TestSdNotify plays systemd's side of Type=notify: a datagram socket in
// $NOTIFY_SOCKET that must hear READY=1 only once the proxy serves, RELOADING=1 and
// READY=1 around a SIGHUP reload, and STOPPING=1 when the drain begins.
func TestSdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	next := func(want string) string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), want+"\n") {
			t.Fatalf("notification %q, %v; want %s first", buf[:n], err, want)
		}
		return string(buf[:n])
	}

	d := startDaemon(t, baseConfig, usersFile())
	next("READY=1")
	if _, code := httpGetStatus(t, "http://"+d.admin+"/readyz"); code != http.StatusOK {
		t.Errorf("READY=1 sent while /readyz answers %d", code)
	}
	dialThrough(t, d.listen, "alice", echoServer(t)).Close()

	d.signal(syscall.SIGHUP)
	msg := next("RELOADING=1")
	if !strings.Contains(msg, "\nMONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", msg)
	}
	next("READY=1")
	d.waitMetric(`sockshaper_config_reloads_total{result="success"}`, 1)

	d.signal(syscall.SIGTERM)
	next("STOPPING=1")
	if code := d.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestBuildInfoMetric checks sockshaper_build_info against `sockshaper version`.
func TestBuildInfoMetric(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	b := currentBuild() // the test binary: the same toolchain; version and revision differ
	body := httpGet(t, "http://"+d.admin+"/metrics")
	var line string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "sockshaper_build_info{") {
			line = l
		}
	}
	out, _ := runCommand(t, "", "version")
	fields := strings.Fields(out) // sockshaper VERSION (revision REV...
	if len(fields) < 4 {
		t.Fatalf("version: %q", out)
	}
	version, rev := fields[1], strings.TrimRight(fields[3], ",)")
	want := fmt.Sprintf(`sockshaper_build_info{goversion=%q,revision=%q,version=%q} 1`, b.GoVersion, rev, version)
	if line != want || b.GoVersion != runtime.Version() {
		t.Errorf("build info series:\n got %s\nwant %s", line, want)
	}
	if rec := d.records("serving"); len(rec) != 1 || rec[0]["version"] != version || rec[0]["revision"] != rev {
		t.Errorf("serving line: %v; want version %s revision %s", rec, version, rev)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/proctest"
)

// e2eConfig is the daemon's config for the end-to-end test: loopback targets
// allowed, limits out of the way, one shaped group so the shaped relay is used.
const e2eConfig = `listen: 127.0.0.1:0
admin_listen: ""
auth: {users_file: users.htpasswd}
access: {client_networks: [127.0.0.0/8], deny_destinations: [private, link-local, metadata]}
limits: {max_sessions: 20000, max_sessions_per_client_ip: 20000, max_sessions_per_user: 20000}
shaping:
  default_group: g
  groups: {g: {upload: 0, download: 256MiB}}
`

// buildSockshaper builds ./cmd/sockshaper into dir. When it does not build the
// test is skipped, except under CI, where that is a failure.
func buildSockshaper(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sockshaper")
	out, err := exec.Command("go", "build", "-C", root, "-o", bin, "./cmd/sockshaper").CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("sockshaper does not build (CI unset, so skipping): %v\n%s", err, out)
		}
		t.Fatalf("go build ./cmd/sockshaper: %v\n%s", err, out)
	}
	return bin
}

// startSockshaper writes a users file and config into dir, starts the daemon and
// returns its SOCKS5 address and process id. Cleanup stops it.
func startSockshaper(t *testing.T, bin, dir string) (string, int) {
	t.Helper()
	return startSockshaperWith(t, bin, dir, e2eConfig)
}

// startSockshaperWith is startSockshaper with the given config.
func startSockshaperWith(t *testing.T, bin, dir, config string) (string, int) {
	t.Helper()
	hash := exec.Command(bin, "passwd", "alice")
	hash.Stdin = strings.NewReader("secret\n")
	line, err := hash.Output()
	if err != nil {
		t.Fatalf("sockshaper passwd: %v", err)
	}
	writeFile(t, filepath.Join(dir, "users.htpasswd"), string(line))
	writeFile(t, filepath.Join(dir, "config.yaml"), config)
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "config.yaml"), "-log-format", "json")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	proctest.DieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(t, cmd) })
	return waitServing(t, stderr), cmd.Process.Pid
}

// waitServing reads the daemon's log until its "serving" line and returns the
// listen address; the rest of the log is drained in the background.
func waitServing(t *testing.T, stderr io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var rec struct{ Msg, Listen string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
				found <- rec.Listen
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(15 * time.Second):
		t.Fatal("sockshaper logged no serving line within 15 s")
		return ""
	}
}

func stopProcess(t *testing.T, cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("sockshaper did not stop within 10 s of SIGTERM; killing it")
		cmd.Process.Kill()
		<-done
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// runJSON runs sockbench with args plus -json and decodes its result into v.
func runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if code := run(ctx, append(args, "-json"), &stdout, &stderr); code != 0 {
		t.Fatalf("sockbench %v: exit %d\n%s", args, code, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), v); err != nil {
		t.Fatalf("sockbench %v: %v\n%s", args, err, stdout.String())
	}
}

func TestAgainstSockshaper(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	addr, pid := startSockshaper(t, buildSockshaper(t, dir), dir)
	auth := []string{"-proxy", addr, "-users", "alice", "-password", "secret", "-duration", "1s"}

	var dl transferResult
	runJSON(t, &dl, append([]string{"download", "-conns", "2", "-pid", strconv.Itoa(pid)}, auth...)...)
	if dl.Bytes <= 0 || dl.Errors != 0 || dl.LiveConns != 2 || dl.CPUSecsPerGiB == nil {
		t.Errorf("download: %d bytes, %d errors, %d live, cpu %v; want bytes, no errors, 2 live, a CPU figure",
			dl.Bytes, dl.Errors, dl.LiveConns, dl.CPUSecsPerGiB)
	}
	var lat latencyResult
	runJSON(t, &lat, append([]string{"latency"}, auth...)...)
	if lat.RoundTrip.Count <= 0 || lat.Errors != 0 || lat.RoundTrip.P99 <= 0 {
		t.Errorf("latency: %d round trips, %d errors, p99 %v ms", lat.RoundTrip.Count, lat.Errors, lat.RoundTrip.P99)
	}
	var up transferResult
	runJSON(t, &up, append([]string{"upload"}, auth...)...)
	if up.Bytes <= 0 || up.Errors != 0 {
		t.Errorf("upload: %d bytes, %d errors", up.Bytes, up.Errors)
	}
	var idle idleResult
	runJSON(t, &idle, append([]string{"idle", "-sessions", "50", "-hold", "0s", "-pid", strconv.Itoa(pid)}, auth...)...)
	if idle.Open != 50 || idle.Errors != 0 || idle.After == nil {
		t.Errorf("idle: %d open, %d errors, after %v", idle.Open, idle.Errors, idle.After)
	}
	// The HTTP front on the same port: tunnels through CONNECT, and GETs.
	var tunnel transferResult
	runJSON(t, &tunnel, append([]string{"download", "-http"}, auth...)...)
	if tunnel.Bytes <= 0 || tunnel.Errors != 0 {
		t.Errorf("download through CONNECT: %d bytes, %d errors", tunnel.Bytes, tunnel.Errors)
	}
	var get churnResult
	runJSON(t, &get, append([]string{"get-churn", "-conns", "2", "-pid", strconv.Itoa(pid)}, auth...)...)
	if get.Sessions <= 0 || get.Errors != 0 || get.Scenario != "get-churn" || get.ProxyCPUMicros == nil {
		t.Errorf("get-churn: %d requests, %d errors, proxy CPU %v; want requests, no errors, a CPU figure",
			get.Sessions, get.Errors, get.ProxyCPUMicros)
	}
	var ch churnResult
	runJSON(t, &ch, append([]string{"churn", "-conns", "4", "-pid", strconv.Itoa(pid)}, auth...)...)
	if ch.Sessions <= 0 || ch.Errors != 0 || ch.ProxyCPUMicros == nil || *ch.ProxyCPUMicros <= 0 || ch.ToolCPUMicros <= 0 {
		t.Errorf("churn: %d sessions, %d errors, proxy CPU %v, tool CPU %v µs per session; want sessions, no errors, CPU figures",
			ch.Sessions, ch.Errors, ch.ProxyCPUMicros, ch.ToolCPUMicros)
	}
	var refused churnResult
	bad := []string{"get-churn", "-proxy", addr, "-users", "alice", "-password", "wrong", "-duration", "200ms", "-conns", "1"}
	runJSON(t, &refused, bad...)
	if refused.Sessions != 0 || refused.ErrorSteps["response"] == 0 {
		t.Errorf("get-churn with a wrong password: %d requests, errors %v; want every one refused", refused.Sessions, refused.ErrorSteps)
	}
}

// TestDirect runs each scenario that needs no proxy on the direct path, so the
// targets and the loops are tested even where the daemon cannot be built.
func TestDirect(t *testing.T) {
	var dl transferResult
	runJSON(t, &dl, "download", "-direct", "-conns", "3", "-duration", "300ms", "-client-rate", "30MiB")
	if dl.Bytes <= 0 || dl.Errors != 0 || dl.TotalMiBps > 33 {
		t.Errorf("paced download: %d bytes at %.1f MiB/s, %d errors; want bytes at 30 MiB/s or less", dl.Bytes, dl.TotalMiBps, dl.Errors)
	}
	var src transferResult
	runJSON(t, &src, "download", "-direct", "-conns", "2", "-duration", "300ms", "-source-rate", "20MiB")
	if src.Bytes <= 0 || src.Errors != 0 || src.TotalMiBps > 23 || src.SourceRateBps != 20<<20 {
		t.Errorf("source-paced download: %d bytes at %.1f MiB/s, %d errors, source rate %d; want bytes at 20 MiB/s or less",
			src.Bytes, src.TotalMiBps, src.Errors, src.SourceRateBps)
	}
	var up transferResult
	runJSON(t, &up, "upload", "-direct", "-conns", "2", "-duration", "300ms")
	if up.Bytes <= 0 || up.Errors != 0 || len(up.PerConnMiBps) != 2 {
		t.Errorf("upload: %d bytes, %d errors, %d rates", up.Bytes, up.Errors, len(up.PerConnMiBps))
	}
	var ch churnResult
	runJSON(t, &ch, "churn", "-direct", "-conns", "2", "-duration", "300ms")
	if ch.Sessions <= 0 || ch.Errors != 0 {
		t.Errorf("churn: %d sessions, %d errors", ch.Sessions, ch.Errors)
	}
	var get churnResult
	runJSON(t, &get, "get-churn", "-direct", "-conns", "2", "-duration", "300ms")
	if get.Sessions <= 0 || get.Errors != 0 {
		t.Errorf("get-churn: %d requests, %d errors", get.Sessions, get.Errors)
	}
}

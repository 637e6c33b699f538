package main

import (
	"bytes"
	"context"
	be "encoding/binary"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"
)

// floodConfig keeps silent connections for 30 s, so that only the budgets can
// free their descriptors during the test. Limits are left to their derivation.
const floodConfig = `
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth: {users_file: users.htpasswd}
access:
  client_networks: [127.0.0.0/8]
  deny_destinations: [private, link-local, metadata]
timeouts: {handshake: 30s, dial: 2s, idle: 30s, drain: 2s}
`

// counterServer sends 8-byte big-endian counters 0, 1, 2, ... to each connection,
// about 1.6 MB/s, so that a reader can check every byte it gets.
func counterServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 16<<10)
				for n := uint64(0); ; {
					for i := 0; i < len(buf); i += 8 {
						be.BigEndian.PutUint64(buf[i:], n)
						n++
					}
					if _, err := c.Write(buf); err != nil {
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// counterStream reads a counterServer stream, checks every counter, and keeps the
// longest time no byte arrived.
type counterStream struct {
	received atomic.Int64
	mu       sync.Mutex
	last     time.Time
	gap      time.Duration
	err      error
}

func readCounters(c net.Conn) *counterStream {
	s := &counterStream{last: time.Now()}
	go func() {
		buf := make([]byte, 32<<10)
		var want uint64
		have := 0 // bytes at the start of buf, a partial counter at the end
		for {
			n, err := c.Read(buf[have:])
			have += n
			whole := have - have%8
			for i := 0; i < whole; i += 8 {
				if got := be.BigEndian.Uint64(buf[i:]); got != want {
					s.fail(fmt.Errorf("counter %d where %d was due", got, want))
					return
				}
				want++
			}
			have = copy(buf, buf[whole:have])
			if n > 0 {
				s.arrived(n)
			}
			if err != nil {
				s.fail(fmt.Errorf("after %d bytes: %w", s.received.Load(), err))
				return
			}
		}
	}()
	return s
}

func (s *counterStream) arrived(n int) {
	s.received.Add(int64(n))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.gap = max(s.gap, now.Sub(s.last))
	s.last = now
}

// longestGap returns the longest time without a byte so far, the current wait
// included.
func (s *counterStream) longestGap() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return max(s.gap, time.Since(s.last))
}

func (s *counterStream) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *counterStream) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// silentFlood holds perAddr silent connections from each of addrs loopback
// addresses (127.0.10.1 and up), reopening each one 2 s after the proxy closes it
// (sooner only makes the test CPU-bound on a shared machine), until stop is closed.
func silentFlood(proxyAddr string, addrs, perAddr int, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for a := range addrs {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 10, byte(a+1))}, Timeout: 5 * time.Second}
		for range perAddr {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if c, err := d.Dial("tcp", proxyAddr); err == nil {
						go func() { <-stop; c.Close() }()
						io.Copy(io.Discard, c)
						c.Close()
					}
					select {
					case <-stop:
						return
					case <-time.After(2 * time.Second):
					}
				}
			}()
		}
	}
	return &wg
}

// loginFrom makes one session from ip through the proxy and checks a round trip,
// all within 5 s.
func loginFrom(proxyAddr, ip, target string) error {
	fwd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	socks, err := xproxy.SOCKS5("tcp", proxyAddr, &xproxy.Auth{User: "alice", Password: password}, fwd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := socks.(xproxy.ContextDialer).DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		return fmt.Errorf("round trip: %q, %v", buf, err)
	}
	return nil
}

// TestSilentFloodUnderLowFDLimit is issue 10's descriptor exhaustion on a small
// scale: 2,000 silent connections from 40 addresses, reopened as they are closed,
// against a daemon limited to 1,024 descriptors. The handshake budget takes the
// flood; a download that started before it keeps streaming, new logins get
// through, and nothing runs out of descriptors.
func TestSilentFloodUnderLowFDLimit(t *testing.T) {
	prlimit := requireTool(t, "prlimit", "util-linux")
	const fdLimit = 1024
	d := startDaemonWrapped(t, []string{prlimit, fmt.Sprintf("--nofile=%d:%d", fdLimit, fdLimit)}, floodConfig, users("alice"))
	budgets := d.records("budgets")
	if len(budgets) != 1 {
		t.Fatalf("%d budgets lines at start, want 1", len(budgets))
	}
	for _, key := range []string{"fd_limit", "max_handshakes", "max_handshakes_per_client_ip", "max_sessions", "max_sessions_per_client_ip", "max_sessions_per_user"} {
		if v, ok := budgets[0][key].(float64); !ok || v < 1 {
			t.Errorf("budgets line: %s = %v", key, budgets[0][key])
		}
	}
	if budgets[0]["fd_limit"] != float64(fdLimit) {
		t.Errorf("budgets line: fd_limit %v, want %d", budgets[0]["fd_limit"], fdLimit)
	}
	maxHandshakes := budgets[0]["max_handshakes"].(float64)
	// A reload derives the same budgets from the same limit, and says so.
	d.signal(syscall.SIGHUP)
	for deadline := time.Now().Add(5 * time.Second); len(d.records("budgets")) < 2 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if again := d.records("budgets"); len(again) != 2 || !sameBudgets(again[0], again[1]) {
		t.Errorf("budgets after a reload: %v", again)
	}

	download := dialThrough(t, d.listen, "alice", counterServer(t))
	download.SetDeadline(time.Time{})
	defer download.Close()
	stream := readCounters(download)
	echoAddr := echoServer(t)

	stop := make(chan struct{})
	flood := silentFlood(d.listen, 40, 50, stop)
	defer func() { close(stop); flood.Wait() }()
	// Into the flood's second wave: the first one's evicted connections are back.
	d.waitMetricAtLeast(`sockshaper_handshakes_evicted_total{scope="global"}`, 3000)

	before := stream.received.Load()
	failed, slowest := 0, time.Duration(0)
	const logins = 20
	for i := range logins {
		start := time.Now()
		if err := loginFrom(d.listen, fmt.Sprintf("127.0.20.%d", i+1), echoAddr); err != nil {
			t.Logf("login %d during the flood: %v", i, err)
			failed++
		}
		slowest = max(slowest, time.Since(start))
		if n := d.metric(`sockshaper_handshakes_active`); n > maxHandshakes {
			t.Errorf("%v connections in their handshake, above max_handshakes %v", n, maxHandshakes)
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d logins failed during the flood", failed, logins)
	}
	// Paced at 1.6 MB/s, a stream that moves is never 3 s without a byte, even on
	// a loaded machine; one that has lost its session stops for good.
	if err := stream.failure(); err != nil {
		t.Errorf("download broken during the flood: %v", err)
	}
	if gap := stream.longestGap(); gap > 3*time.Second {
		t.Errorf("download stalled for %v during the flood", gap)
	}
	if strings.Contains(d.logText(), "too many open files") {
		t.Error("the daemon ran out of descriptors")
	}
	t.Logf("slowest login %v; download moved %d bytes during the flood, longest gap %v; %v silent connections evicted",
		slowest, stream.received.Load()-before, stream.longestGap(),
		d.metric(`sockshaper_handshakes_evicted_total{scope="global"}`)+d.metric(`sockshaper_handshakes_evicted_total{scope="client"}`))
}

// sameBudgets reports whether two budgets log records hold the same values.
func sameBudgets(a, b map[string]any) bool {
	for k, v := range a {
		if k != "time" && b[k] != v {
			return false
		}
	}
	return len(a) == len(b)
}

// waitMetricAtLeast polls until series reaches at least min.
func (d *process) waitMetricAtLeast(series string, min float64) {
	d.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := d.metric(series)
		if got >= min {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s = %v, want at least %v", series, got, min)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestExplicitLimitsAboveDescriptorLimitWarn: explicit limits are honoured, but
// check-config and the start-up log say when they cannot fit the descriptor limit.
func TestExplicitLimitsAboveDescriptorLimitWarn(t *testing.T) {
	prlimit := requireTool(t, "prlimit", "util-linux")
	limited := []string{prlimit, "--nofile=1024:1024"}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "users.htpasswd"), usersFile())
	for _, tt := range []struct {
		limits string
		warn   bool
	}{
		{"", false}, // derived: fits by construction
		{"limits: {max_sessions: 180, max_handshakes: 100}\n", false},
		{"limits: {max_sessions: 5000}\n", true},
	} {
		config := filepath.Join(dir, "sockshaper.yaml")
		writeFile(t, config, floodConfig+tt.limits)
		cmd := exec.Command(limited[0], append(limited[1:], binary, "check-config", "-config", config)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("check-config %q: %v\n%s%s", tt.limits, err, &stdout, &stderr)
		}
		if !strings.Contains(stdout.String(), "budgets at this process's descriptor limit 1024: max_handshakes=") {
			t.Errorf("check-config %q: no budgets line in %q", tt.limits, &stdout)
		}
		if got := strings.Contains(stderr.String(), "warning: limits: max_handshakes"); got != tt.warn {
			t.Errorf("check-config %q: warning %v, want %v: %q", tt.limits, got, tt.warn, &stderr)
		}
	}
	d := startDaemonWrapped(t, limited, floodConfig+"limits: {max_sessions: 5000}\n", usersFile())
	warn := d.records("budgets exceed the descriptor limit")
	if len(warn) != 1 || !strings.Contains(fmt.Sprint(warn[0]["err"]), "max_sessions 5000") {
		t.Errorf("start-up warning: %v", warn)
	}
}

package main

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkUDP checks what every udp run must show: datagrams echoed, each one sent
// either received or lost, the echo target between the two, no bad reply, no
// error, and ordered percentiles.
func checkUDP(t *testing.T, name string, r udpResult, conns int) {
	t.Helper()
	rt := r.RoundTrip
	switch {
	case r.Scenario != "udp" || r.LiveConns != conns || r.Errors != 0:
		t.Errorf("%s: scenario %q, %d live of %d, errors %d %v", name, r.Scenario, r.LiveConns, conns, r.Errors, r.ErrorSteps)
	case r.PerSecond <= 0 || r.Received <= 0 || len(r.PerConnPerSecond) != conns:
		t.Errorf("%s: %.0f datagrams/s, %d received, %d per-association rates", name, r.PerSecond, r.Received, len(r.PerConnPerSecond))
	case r.Received+r.Lost != r.Sent:
		t.Errorf("%s: received %d + lost %d != sent %d", name, r.Received, r.Lost, r.Sent)
	case r.TargetReceived < r.Received || r.TargetReceived > r.Sent:
		t.Errorf("%s: the echo got %d, want between received %d and sent %d", name, r.TargetReceived, r.Received, r.Sent)
	case r.Bad != 0 || r.Late > r.Timeouts:
		t.Errorf("%s: %d bad replies, %d late of %d timed out", name, r.Bad, r.Late, r.Timeouts)
	case rt.Count != int(r.Received) || !(0 < rt.P50 && rt.P50 <= rt.P90 && rt.P90 <= rt.P99 && rt.P99 <= rt.Max):
		t.Errorf("%s: %d round trips for %d received, p50 %v p90 %v p99 %v max %v", name, rt.Count, r.Received, rt.P50, rt.P90, rt.P99, rt.Max)
	}
}

func TestUDPAgainstSockshaper(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	bin := buildSockshaper(t, dir)
	addr, pid := startSockshaper(t, bin, dir)
	auth := []string{"udp", "-proxy", addr, "-users", "alice", "-password", "secret", "-duration", "500ms"}
	tests := []struct {
		name  string
		args  []string
		conns int
	}{
		{"window 32, 1 association", []string{"-pid", strconv.Itoa(pid)}, 1},
		{"window 8, 4 associations, 1000 B", []string{"-conns", "4", "-window", "8", "-size", "1000"}, 4},
		{"latency, 2 associations", []string{"-conns", "2", "-window", "1"}, 2},
	}
	for _, tt := range tests {
		var r udpResult
		runJSON(t, &r, append(auth, tt.args...)...)
		checkUDP(t, tt.name, r, tt.conns)
		if r.Via != addr {
			t.Errorf("%s: via %q, want %q", tt.name, r.Via, addr)
		}
	}
	var withCPU udpResult
	runJSON(t, &withCPU, append(auth, "-pid", strconv.Itoa(pid))...)
	if withCPU.CPUSecsPerMillion == nil || *withCPU.CPUSecsPerMillion <= 0 {
		t.Errorf("-pid: CPU per million datagrams %v, want a figure", withCPU.CPUSecsPerMillion)
	}
}

// TestUDPRefused runs the udp scenario against a daemon whose config refuses UDP
// ASSOCIATE: it must fail at once with the proxy's reply, not wait for datagrams.
func TestUDPRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	cfg := strings.Replace(e2eConfig, "deny_destinations:", "udp_associate: false, deny_destinations:", 1)
	addr, _ := startSockshaperWith(t, buildSockshaper(t, dir), dir, cfg)
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	code := run(ctx, []string{"udp", "-proxy", addr, "-users", "alice", "-password", "secret", "-duration", "20s"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "no association opened: connect: refused with reply") {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and the refusal", code, stderr.String())
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("took %v to report the refusal; want well under the 20 s duration", d)
	}
}

func TestUDPDirect(t *testing.T) {
	for _, conns := range []int{1, 3} {
		var r udpResult
		runJSON(t, &r, "udp", "-direct", "-conns", strconv.Itoa(conns), "-duration", "300ms")
		checkUDP(t, "direct", r, conns)
		if r.Via != "direct" || r.Lost != 0 {
			t.Errorf("direct: via %q, %d lost; want none lost on loopback with one echo per association", r.Via, r.Lost)
		}
	}
	var lat udpResult
	runJSON(t, &lat, "udp", "-direct", "-window", "1", "-duration", "300ms")
	checkUDP(t, "direct latency", lat, 1)
}

func TestUDPFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"size below the stamp", []string{"-size", "15"}},
		{"size too large", []string{"-size", "70000"}},
		{"no window", []string{"-window", "0"}},
		{"too many associations", []string{"-conns", "2000"}},
		{"loss timeout too short", []string{"-loss-timeout", "10us"}},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		if code := run(context.Background(), append([]string{"udp", "-direct"}, tt.args...), &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%s: exit %d, want 2 (usage)\n%s", tt.name, code, stderr.String())
		}
	}
}

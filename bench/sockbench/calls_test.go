package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseCallOptions(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.htpasswd")
	if err := os.WriteFile(users, []byte("u1:$2y$05$x\n# comment\nu2:$2y$05$y\nu3:$2y$05$z\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dup := filepath.Join(dir, "dup.htpasswd")
	if err := os.WriteFile(dup, []byte("u1:a\nu1:b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := parseOptions("download", []string{"-users-file", users, "-password", "pw", "-conns", "3",
		"-source-rate-per-conn", "256kbit", "-frame", "20ms", "-warmup", "5s", "-read-every", "100ms",
		"-expect-rate", "256kbit", "-tolerance", "5%"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := o.calls
	if c.sourceConn != 32000 || c.frame != 20*time.Millisecond || frameBytes(c.sourceConn, c.frame) != 640 ||
		c.warmup != 5*time.Second || c.readEvery != 100*time.Millisecond || c.expectBps != 32000 || c.tolerance != 0.05 {
		t.Errorf("got %+v; want 32000 B/s in 20 ms frames of 640 B, 5s warm-up, 100ms polls, 32000 B/s ±5%%", c)
	}
	for i, want := range []string{"u1", "u2", "u3"} {
		if got := o.perConn[i]; got.user != want || got.password != "pw" {
			t.Errorf("connection %d: %+v, want %s with password pw", i, got, want)
		}
	}
	bad := []struct {
		why  string
		args []string
	}{
		{"users file and -users", []string{"-users-file", users, "-users", "alice"}},
		{"missing users file", []string{"-users-file", filepath.Join(dir, "none")}},
		{"name listed twice", []string{"-users-file", dup}},
		{"both source rates", []string{"-source-rate", "1MiB", "-source-rate-per-conn", "256kbit"}},
		{"frame too short", []string{"-source-rate-per-conn", "256kbit", "-frame", "100us"}},
		{"frame too long", []string{"-frame", "2s"}},
		{"frame under a byte", []string{"-source-rate-per-conn", "8bit", "-frame", "10ms"}},
		{"negative warm-up", []string{"-warmup", "-1s"}},
		{"poll longer than the phase", []string{"-read-every", "2s", "-duration", "1s"}},
		{"bad expected rate", []string{"-expect-rate", "256kbps"}},
		{"tolerance without %", []string{"-tolerance", "5"}},
		{"tolerance of 100%", []string{"-tolerance", "100%"}},
	}
	for _, tc := range bad {
		if _, err := parseOptions("download", tc.args, io.Discard); err == nil {
			t.Errorf("%s (%v): succeeded, want an error", tc.why, tc.args)
		}
	}
	if _, err := parseOptions("upload", []string{"-warmup", "1s"}, io.Discard); err == nil {
		t.Error("upload -warmup succeeded; the call flags are download's")
	}
}

func TestParsePercent(t *testing.T) {
	tests := []struct {
		in   string
		want float64
		ok   bool
	}{
		{"5%", 0.05, true},
		{" 2.5 % ", 0.025, true},
		{"0%", 0, true},
		{"5", 0, false},
		{"-1%", 0, false},
		{"100%", 0, false},
		{"x%", 0, false},
	}
	for _, tc := range tests {
		got, err := parsePercent(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parsePercent(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestFrameBytes(t *testing.T) {
	tests := []struct {
		bps   int64
		frame time.Duration
		want  int
	}{
		{32000, 20 * time.Millisecond, 640}, // 256 kbit/s
		{8000, 20 * time.Millisecond, 160},  // 64 kbit/s
		{32000, 30 * time.Millisecond, 960},
		{100, 7 * time.Millisecond, 1}, // 0.7 B rounds to 1
	}
	for _, tc := range tests {
		if got := frameBytes(tc.bps, tc.frame); got != tc.want {
			t.Errorf("frameBytes(%d, %v) = %d, want %d", tc.bps, tc.frame, got, tc.want)
		}
	}
}

func TestCheckRates(t *testing.T) {
	const want = 32000.0 // 256 kbit/s
	tests := []struct {
		name               string
		rates              []float64
		tolerance          float64
		within, below, abv int
		minK, medK, maxK   float64
	}{
		{"all on the rate", []float64{want, want, want}, 0.05, 3, 0, 0, 256, 256, 256},
		{"edges are inside", []float64{30400, 33600}, 0.05, 2, 0, 0, 243.2, 256, 268.8},
		{"just outside", []float64{want * 0.949, want, want * 1.051}, 0.05, 1, 1, 1, 242.944, 256, 269.056},
		{"a stalled session", []float64{0, want, want, want}, 0.05, 3, 1, 0, 0, 256, 256},
		{"a wider band", []float64{want * 0.8, want * 1.3}, 0.25, 1, 0, 1, 204.8, 268.8, 332.8},
		{"none", nil, 0.05, 0, 0, 0, 0, 0, 0},
	}
	for _, tc := range tests {
		c := checkRates(tc.rates, want, tc.tolerance)
		if c.Within != tc.within || c.Below != tc.below || c.Above != tc.abv || c.Conns != len(tc.rates) {
			t.Errorf("%s: within %d below %d above %d of %d; want %d, %d, %d", tc.name, c.Within, c.Below, c.Above, c.Conns, tc.within, tc.below, tc.abv)
		}
		if !near(c.MinKbps, tc.minK) || !near(c.MedianKbps, tc.medK) || !near(c.MaxKbps, tc.maxK) {
			t.Errorf("%s: min/median/max %v/%v/%v kbit/s, want %v/%v/%v", tc.name, c.MinKbps, c.MedianKbps, c.MaxKbps, tc.minK, tc.medK, tc.maxK)
		}
		if len(tc.rates) > 0 && !near(c.Share, float64(tc.within)/float64(len(tc.rates))) {
			t.Errorf("%s: share %v, want %d/%d", tc.name, c.Share, tc.within, len(tc.rates))
		}
	}
}

// TestPacedDirect paces 20 direct downloads in frames, reads them by polling,
// and checks each got its rate; sockbench alone on loopback, so the band can be
// narrow even on a loaded machine.
func TestPacedDirect(t *testing.T) {
	var dl transferResult
	runJSON(t, &dl, "download", "-direct", "-conns", "20", "-source-rate-per-conn", "64kbit", "-frame", "20ms",
		"-warmup", "300ms", "-duration", "2s", "-read-every", "50ms", "-expect-rate", "64kbit", "-tolerance", "10%")
	c := dl.Check
	if c == nil || dl.Errors != 0 || dl.FrameBytes != 160 || c.Conns != 20 || c.Within < 18 {
		t.Fatalf("paced download: %d errors, frame %d B, check %+v; want 160 B frames and at least 18 of 20 within 10%% of 64 kbit/s", dl.Errors, dl.FrameBytes, c)
	}
	if s := dl.Seconds; s < 2 || s > 3 {
		t.Errorf("measured phase %.2f s, want about 2 s (after the warm-up)", s)
	}
	if table := tableOf(t, &dl); !strings.Contains(table, "in 20 ms frames of 160 B") || !strings.Contains(table, "within ±10% of 64 kbit/s") {
		t.Errorf("the table does not state the frames and the check:\n%s", table)
	}
}

// tableOf renders r's table.
func tableOf(t *testing.T, r result) string {
	t.Helper()
	var b strings.Builder
	r.table(&b)
	return b.String()
}

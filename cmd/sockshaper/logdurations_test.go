package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLoggerWritesDurationsAsSeconds: both log formats write a duration
// attribute as seconds, a float, wherever it is: a typed attribute, an Any
// value, one inside a group, one of a With logger.
func TestLoggerWritesDurationsAsSeconds(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"json", `"timeout":5,"a":{"took":0.0037556},"backoff":0.005,"d":0.0000015,"n":7`},
		{"text", `timeout=5 a.took=0.0037556 backoff=0.005 d=1.5e-06 n=7`},
	} {
		t.Run(tc.format, func(t *testing.T) {
			var b bytes.Buffer
			log, err := newLogger(&b, tc.format, "info")
			if err != nil {
				t.Fatal(err)
			}
			log.With(slog.Duration("timeout", 5*time.Second)).Info("m",
				slog.Group("a", slog.Duration("took", 3755600*time.Nanosecond)),
				"backoff", 5*time.Millisecond, "d", 1500*time.Nanosecond, "n", 7)
			if !strings.Contains(b.String(), tc.want) {
				t.Errorf("%s log %q, want %q", tc.format, b.String(), tc.want)
			}
		})
	}
}

// goDuration matches a JSON string value that is a Go duration ("3.8ms").
var goDuration = regexp.MustCompile(`:"[0-9.]+(ns|µs|ms|s|m|h)"`)

// durationKeys are the duration attributes the daemon logs.
var durationKeys = []string{"duration", "throttled_up", "throttled_down", "timeout", "backoff"}

// TestDaemonLogsDurationsInSeconds: a real daemon's JSON log (a session's
// accounting line, the drain's timeout) gives every duration as seconds, never
// integer nanoseconds.
func TestDaemonLogsDurationsInSeconds(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	c := dialThrough(t, d.listen, "alice", echoServer(t))
	roundTrip(t, c, strings.Repeat("x", 1000))
	c.Close()
	waitForRecordCount(t, d, "session", 1)
	d.signal(syscall.SIGTERM)
	d.waitExit(10 * time.Second)

	session, drain := d.records("session")[0], d.records("draining")
	if len(drain) != 1 || drain[0]["timeout"] != 2.0 {
		t.Errorf("draining lines %v: want timeout 2 (seconds; timeouts.drain: 2s)", drain)
	}
	if v, ok := session["duration"].(float64); !ok || v <= 0 || v >= 10 || v == float64(int64(v)) {
		t.Errorf("accounting duration %v: want a fraction of a second", session["duration"])
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.lines {
		for _, k := range durationKeys {
			if v, ok := l[k]; ok {
				if f, isNum := v.(float64); !isNum || f >= 3600 {
					t.Errorf("%s = %v in %v: want seconds", k, v, l)
				}
			}
		}
		raw, _ := json.Marshal(l)
		if goDuration.Match(raw) {
			t.Errorf("a Go duration string in %s", raw)
		}
	}
}

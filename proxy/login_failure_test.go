package proxy

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// What a failed login shows: how long it took, and its accounting line.

// TestWrongPasswordCostsTheSameWhateverTheHashCost: with users at mixed bcrypt
// costs, a wrong password for a cheap hash and an unknown user take about the same
// time, so timing does not tell which users exist.
func TestWrongPasswordCostsTheSameWhateverTheHashCost(t *testing.T) {
	h := newHarness(t, usersAtCost(t, map[string]int{"cheap": 4, "dear": 7}))
	const rounds = 7
	var wrong, unknown []time.Duration
	for i := range rounds {
		// A fresh address each time keeps the throttle out of the measurement.
		got, d := login(t, h.addr, fmt.Sprintf("127.0.8.%d", 2*i+1), "cheap", "wrong")
		if !bytes.Equal(got, loginFailed) {
			t.Fatalf("wrong password: %x", got)
		}
		wrong = append(wrong, d)
		got, d = login(t, h.addr, fmt.Sprintf("127.0.8.%d", 2*i+2), fmt.Sprintf("nobody%d", i), "wrong")
		if !bytes.Equal(got, loginFailed) {
			t.Fatalf("unknown user: %x", got)
		}
		unknown = append(unknown, d)
	}
	mw, mu := median(wrong), median(unknown)
	t.Logf("median wrong password for a cost-4 user %v, unknown user %v", mw, mu)
	if diff := max(mw, mu) - min(mw, mu); diff > max(mw, mu)/2 {
		t.Errorf("medians differ by %v: wrong password for a cost-4 user %v, unknown user %v", diff, mw, mu)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestFailedLoginNamesTheUserWithoutForgingLines: the accounting line of a failed
// login names the user that was tried, escaped, so a name holding a newline or a
// quote cannot start a line of its own.
func TestFailedLoginNamesTheUserWithoutForgingLines(t *testing.T) {
	h := newHarness(t, "")
	for _, user := range []string{"mallory", "eve\nsession user=alice result=ok", `eve" result=ok user="alice`} {
		login(t, h.addr, "127.0.9.1", user, "guess")
	}
	waitFor(t, "three accounting lines", func() bool { return strings.Count(h.logs.String(), "msg=session ") == 3 })
	lines := strings.Split(strings.TrimSpace(h.logs.String()), "\n")
	var accounting []string
	for _, l := range lines {
		if !strings.HasPrefix(l, "time=") {
			t.Errorf("a log line that the logger did not start: %q", l)
		}
		if strings.Contains(l, "msg=session ") {
			accounting = append(accounting, l)
		}
	}
	for i, want := range []string{`user=mallory `, `user="eve\nsession user=alice result=ok" `, `user="eve\" result=ok user=\"alice" `} {
		if i >= len(accounting) || !strings.Contains(accounting[i], want) || !strings.Contains(accounting[i], "result=auth_failed") {
			t.Errorf("accounting line %d does not name %s with result=auth_failed: %q", i, want, accounting)
		}
	}
}

package main

import (
	"net"
	"testing"
	"time"
)

// TestUsersShareSaturatedBucketFairly: on a saturated 4 Mbit/s global bucket,
// a user with 100 busy sessions and a user with one each get about half of it
// (±20%), and none of the 101 sessions stalls for a 2 s window. Before, the
// bucket served sessions first come, first served: the one-session user got a
// 101st of it (about 1%).
func TestUsersShareSaturatedBucketFairly(t *testing.T) {
	const rate = 500_000 // 4 Mbit/s
	d := startDaemon(t, baseConfig+`
limits: {max_sessions_per_user: 200}
shaping:
  global: {upload: 0, download: 4Mbit}
`, users("alice", "bob"))
	src := sourceServer(t)
	conns := make([]net.Conn, 0, 101)
	for range 100 {
		conns = append(conns, dialThrough(t, d.listen, "alice", src))
	}
	conns = append(conns, dialThrough(t, d.listen, "bob", src))
	for _, c := range conns {
		defer c.Close()
	}
	const windows, window = 4, 2 * time.Second
	got := readWindows(conns, windows, window)
	// Window 0 holds the burst and the sessions joining the queue.
	if s := starved(got, 1); s != "" {
		t.Fatal(s)
	}
	var alice, bob int64
	for w := 1; w < windows; w++ {
		bob += got[100][w]
		alice += windowTotal(got, w) - got[100][w]
	}
	secs := (time.Duration(windows-1) * window).Seconds()
	total := float64(alice+bob) / secs
	t.Logf("alice (100 sessions) %.0f B/s, bob (1 session) %.0f B/s, together %.0f B/s of %d", float64(alice)/secs, float64(bob)/secs, total, rate)
	if total < 0.7*rate || total > 1.3*rate {
		t.Errorf("together %.0f B/s, want the global %d B/s (±30%%)", total, rate)
	}
	for _, u := range []struct {
		name  string
		bytes int64
	}{{"alice (100 sessions)", alice}, {"bob (1 session)", bob}} {
		if r := float64(u.bytes) / secs; r < 0.8*total/2 || r > 1.2*total/2 {
			t.Errorf("%s got %.0f B/s, want half of %.0f B/s (±20%%)", u.name, r, total)
		}
	}
}

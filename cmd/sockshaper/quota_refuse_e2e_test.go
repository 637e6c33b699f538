package main

import (
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"
)

// TestRefusingQuotaCutsAndRefuses: a daily quota with over_rate 0, crossed in
// the middle of a download. The live download is cut with a reset (the client
// must not take the cut for a complete transfer), its accounting line says the
// quota limited it, and the user's next session is refused with 0x02 while
// another user goes on.
func TestRefusingQuotaCutsAndRefuses(t *testing.T) {
	d := startDaemon(t, quotaConfigE2E("{daily: 1MiB, over_rate: 0}", "4MiB"), users("alice", "bob"))
	src := sourceServer(t)
	c := dialThrough(t, d.listen, "alice", src)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("download over a refusing quota ended after %d bytes with %v, want a reset", n, err)
	}
	if n < 1<<20 || n > 3<<20 {
		t.Errorf("the download moved %d bytes before the cut, want a little over the 1 MiB allowance", n)
	}
	d.waitMetric(`sockshaper_sessions_reset_total{reason="quota"}`, 1)
	d.waitMetric(`sockshaper_quota_exceeded_total{group="students"}`, 1)

	dialer, err := xproxy.SOCKS5("tcp", d.listen, &xproxy.Auth{User: "alice", Password: password}, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialer.Dial("tcp", echoServer(t)); err == nil || !strings.Contains(err.Error(), "not allowed") {
		t.Errorf("alice's next session over her quota: %v, want refused as not allowed (0x02)", err)
	}
	d.waitMetric(`sockshaper_sessions_total{app="other",command="connect",front="socks5",result="quota_exceeded"}`, 1)
	roundTrip(t, dialThrough(t, d.listen, "bob", echoServer(t)), "bob has his own allowance")

	var cut map[string]any
	for _, rec := range d.records("session") {
		if rec["user"] == "alice" && rec["close_reason"] == "quota" {
			cut = rec
		}
	}
	if cut == nil || cut["quota_limited"] != true {
		t.Errorf("accounting line of the cut download: %v, want close_reason quota and quota_limited true", cut)
	}
}

package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/redistest"
)

// capConfig is clusterConfig with alice's session cap set to n.
func capConfig(url, name string, n int) string {
	return strings.Replace(clusterConfig(url, name), "max_sessions_per_user: 4",
		fmt.Sprintf("max_sessions_per_user: %d", n), 1)
}

// burst opens n sessions of alice to target at once, straight to the given
// listeners in turn (from 127.0.0.8, a client address), and returns those
// admitted; they close when the test ends.
func burst(t *testing.T, n int, target string, listeners ...string) []net.Conn {
	t.Helper()
	var (
		mu  sync.Mutex
		got []net.Conn
		wg  sync.WaitGroup
	)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			c, err := dialThroughFrom(t, "127.0.0.8", listeners[i%len(listeners)], "alice", target)
			if err == nil {
				mu.Lock()
				got = append(got, c)
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	t.Cleanup(func() { closeAll(got) })
	return got
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// activeSessions is the instance's relaying sessions (SOCKS5 CONNECT to an
// "other" destination, as every session of these tests).
func (d *process) activeSessions() float64 {
	return d.metric(`sockshaper_sessions_active{app="other",command="connect",front="socks5"}`)
}

// TestSessionCapBurstAcrossInstances: 30 sessions of one user opened at once,
// 15 on each of two instances, against her cap of 10 in all: at most 10 are
// admitted (each instance used to admit 10 of its own before the other's count
// arrived: 20). Closing them gives every slot back: the next burst gets 10 again.
func TestSessionCapBurstAcrossInstances(t *testing.T) {
	rdb := redistest.Start(t)
	a := startDaemon(t, capConfig(rdb.URL(), "shaper-a", 10), usersFile())
	b := startDaemon(t, capConfig(rdb.URL(), "shaper-b", 10), usersFile())
	a.waitMetric(`sockshaper_cluster_peers`, 2)
	b.waitMetric(`sockshaper_cluster_peers`, 2)
	echo := echoServer(t)
	for round := range 2 {
		got := burst(t, 30, echo, a.listen, b.listen)
		t.Logf("round %d: %d of 30 admitted against a cap of 10 (%v on a, %v on b)",
			round, len(got), a.activeSessions(), b.activeSessions())
		if len(got) > 10 {
			t.Errorf("round %d: %d sessions admitted, want at most her cap of 10 across both instances", round, len(got))
		}
		if len(got) < 8 {
			t.Errorf("round %d: only %d sessions admitted, want her cap of 10 (slots leaked?)", round, len(got))
		}
		closeAll(got)
		a.waitMetric(`sockshaper_sessions_active{app="other",command="connect",front="socks5"}`, 0)
		b.waitMetric(`sockshaper_sessions_active{app="other",command="connect",front="socks5"}`, 0)
	}
}

// TestPeerForgottenDuringOutage: with Redis down, a peer holding all of alice's
// sessions is SIGKILLed. The survivor first keeps to its part of her cap and
// of her rate (it cannot tell a dead peer from a silent one), and once the
// peer's state has outlived its time to live it admits her up to her whole cap
// and gives her the whole rate (it used to keep the dead peer's sessions and
// half the rate for as long as Redis stayed down). go-redis's own dial errors
// do not flood the log meanwhile: the outage is logged once.
func TestPeerForgottenDuringOutage(t *testing.T) {
	const limit = 1 << 20
	rdb := redistest.Start(t)
	a := startDaemon(t, clusterConfig(rdb.URL(), "shaper-a"), usersFile())
	b := startDaemon(t, clusterConfig(rdb.URL(), "shaper-b"), usersFile())
	a.waitMetric(`sockshaper_cluster_peers`, 2)
	src := sourceServer(t)
	if got := burst(t, 4, src, b.listen); len(got) != 4 {
		t.Fatalf("%d of alice's 4 sessions admitted on b", len(got))
	}
	time.Sleep(time.Second) // a hears of them

	stopped := len(a.logRecords())
	rdb.Stop()
	a.waitMetricAbove(`sockshaper_cluster_outages_total`, 0)
	outage := time.Now()
	logged := len(a.logRecords())
	b.kill()
	var dl downloads
	early := burst(t, 4, src, a.listen)
	t.Logf("right after the peer died, during the outage: %d of 4 admitted on the survivor", len(early))
	if len(early) > 2 {
		t.Errorf("%d sessions admitted at once during the outage, want at most half of her cap (the peer may still hold the rest)", len(early))
	}
	for _, c := range early {
		dl.add(c)
	}
	held := len(early)
	deadline := time.Now().Add(30 * time.Second)
	for held < 4 && time.Now().Before(deadline) {
		for _, c := range burst(t, 4-held, src, a.listen) {
			dl.add(c)
			held++
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the survivor held %d of her 4 sessions %.1f s into the outage", held, time.Since(outage).Seconds())
	if held != 4 {
		t.Fatalf("the survivor admits %d of alice's 4 sessions after 30 s of outage, want all: the dead peer's are forgotten", held)
	}
	dl.rate(time.Second)
	r := dl.rate(2 * time.Second)
	t.Logf("alice alone on the survivor during the outage: %.0f B/s", r)
	if r < 0.8*limit || r > 1.2*limit {
		t.Errorf("alice moves %.0f B/s on the survivor, want her whole limit %d (±20%%) once the peer is forgotten", r, limit)
	}
	secs := time.Since(outage).Seconds()
	var client, warned int
	for i, rec := range a.logRecords()[stopped:] {
		msg := fmt.Sprint(rec["msg"])
		switch {
		case i >= logged-stopped && (msg == "redis client" || msg == "unparsed" && strings.Contains(fmt.Sprint(rec["text"]), "redis")):
			client++
		case strings.HasPrefix(msg, "redis unreachable"), strings.HasPrefix(msg, "redis still unreachable"):
			warned++
		}
	}
	t.Logf("%.0f s of outage: %d lines from the redis client, %d warnings", secs, client, warned)
	if limitLines := int(secs/redisLogEvery.Seconds()) + 2; client > limitLines {
		t.Errorf("%d lines from the redis client in %.0f s of outage, want at most %d", client, secs, limitLines)
	}
	if warned != 2 {
		t.Errorf("%d warnings about the outage, want 2: Redis unreachable, then the peer forgotten", warned)
	}
}

// lines returns a copy of the log records so far.
func (d *process) logRecords() []map[string]any {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]map[string]any(nil), d.lines...)
}

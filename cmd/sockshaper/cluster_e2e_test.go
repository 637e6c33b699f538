package main

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/haproxytest"
	"github.com/sockshaper/sockshaper/internal/redistest"
)

// clusterConfig is one instance behind HAProxy (127.0.0.5) sharing limits
// through the Redis at url: alice may download 1 MiB/s and hold 4 sessions in
// all, wherever they land.
func clusterConfig(url, name string) string {
	return fmt.Sprintf(`
listen: 127.0.0.1:0
admin_listen: 127.0.0.1:0
auth: {users_file: users.htpasswd}
access:
  client_networks: [127.0.0.8/32]
  deny_destinations: [private, link-local, metadata]
  proxy_protocol: {trusted: [127.0.0.5/32]}
timeouts: {handshake: 2s, dial: 2s, idle: 30s, drain: 2s}
limits: {max_sessions_per_user: 4}
cluster: {redis: %q, name: %q}
shaping:
  default_group: students
  groups:
    students: {upload: 0, download: 1MiB}
`, url, name)
}

// downloads reads from every connection in the background; rate measures what
// they moved together over d.
type downloads struct {
	total atomic.Int64
	wg    sync.WaitGroup
}

func (dl *downloads) add(c net.Conn) {
	dl.wg.Go(func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			dl.total.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
}

func (dl *downloads) rate(d time.Duration) float64 {
	before := dl.total.Load()
	time.Sleep(d)
	return float64(dl.total.Load()-before) / d.Seconds()
}

// TestSharedLimitsThroughHAProxyAndRedis: two instances behind a real HAProxy
// share alice's limits through a real Redis. Her download over 4 sessions, spread
// over both instances, totals her limit (not twice it); her session cap holds
// across the instances; with Redis killed mid-run service goes on and the rate
// stays bounded (each instance falls back to half), and it is shared again
// when Redis comes back.
func TestSharedLimitsThroughHAProxyAndRedis(t *testing.T) {
	const limit = 1 << 20
	rdb := redistest.Start(t)
	a := startDaemon(t, clusterConfig(rdb.URL(), "shaper-a"), usersFile())
	b := startDaemon(t, clusterConfig(rdb.URL(), "shaper-b"), usersFile())
	lb := haproxytest.Start(t, "127.0.0.5",
		haproxytest.Backend{Name: "a", Addr: a.listen}, haproxytest.Backend{Name: "b", Addr: b.listen})
	src := sourceServer(t)
	a.waitMetric(`sockshaper_cluster_peers`, 2)

	var dl downloads
	for range 4 {
		c, err := dialThroughFrom(t, "127.0.0.8", lb.Addr, "alice", src)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dl.add(c)
	}
	onA, onB := a.metric(`sockshaper_sessions_active{app="other",command="connect",front="socks5"}`), b.metric(`sockshaper_sessions_active{app="other",command="connect",front="socks5"}`)
	if onA < 1 || onB < 1 {
		t.Fatalf("sessions by instance: %v and %v, want them spread over both", onA, onB)
	}
	dl.rate(1500 * time.Millisecond) // bursts, and the first exchanges
	before := rdb.CommandCalls()
	r := dl.rate(3 * time.Second)
	after := rdb.CommandCalls()
	perSecond := func(cmds ...string) float64 {
		var n int64
		for _, c := range cmds {
			n += after[c] - before[c]
		}
		return float64(n) / 3 / 2 // over 3 s, per instance
	}
	sent := perSecond("set", "zadd", "zremrangebyscore", "zrangebyscore", "mget", "eval", "evalsha")
	scripted := perSecond("hget", "hset", "expire")
	t.Logf("Redis commands per instance per second: %.1f sent, %.1f run by the usage script (one active user)", sent, scripted)
	if sent > 26 {
		t.Errorf("%.1f Redis commands sent per instance per second, want at most 26 (5 per exchange, 4 exchanges a second, the usage script once a second; sessions' slots only as sessions open and close)", sent)
	}
	t.Logf("shared: %.0f B/s", r)
	if r < 0.85*limit || r > 1.15*limit {
		t.Errorf("alice over both instances: %.0f B/s, want her 1 MiB/s in all (±15%%), not twice it", r)
	}

	// Her fifth session is refused wherever it lands: 4 is her cap in all,
	// reserved in Redis as each session opened.
	if c, err := dialThroughFrom(t, "127.0.0.8", lb.Addr, "alice", echoServer(t)); err == nil {
		c.Close()
		t.Error("alice's fifth session was admitted: the per-user cap did not hold across instances")
	}

	rdb.Stop()
	a.waitMetricAbove(`sockshaper_cluster_outages_total`, 0)
	dl.rate(time.Second)
	r = dl.rate(3 * time.Second)
	t.Logf("redis down: %.0f B/s", r)
	if r > 1.3*limit || r < 0.5*limit {
		t.Errorf("with Redis down: %.0f B/s, want service to go on within 1.3× her limit", r)
	}
	rdb.Restart()
	a.waitMetric(`sockshaper_cluster_peers`, 2)
	dl.rate(time.Second)
	r = dl.rate(3 * time.Second)
	t.Logf("redis back: %.0f B/s", r)
	if r < 0.85*limit || r > 1.15*limit {
		t.Errorf("after Redis came back: %.0f B/s, want 1 MiB/s again (±15%%)", r)
	}
	for _, d := range []*process{a, b} {
		for _, rec := range d.records("session") {
			if rec["result"] == "ok" {
				t.Errorf("a download ended during the run: %v", rec)
			}
		}
	}
}

// TestQuotaSharedAcrossInstances: alice's daily quota (3 MiB, refusing) holds for
// her sessions on two instances together: her downloads, one on each, are cut
// when they have moved about 3 MiB between them, not 3 MiB each.
func TestQuotaSharedAcrossInstances(t *testing.T) {
	rdb := redistest.Start(t)
	quota := func(cfg string) string {
		return "state_dir: state\n" + strings.Replace(cfg, "students: {upload: 0, download: 1MiB}",
			"students: {upload: 0, download: 1MiB, quota: {daily: 3MiB, over_rate: 0}}", 1)
	}
	a := startDaemon(t, quota(clusterConfig(rdb.URL(), "shaper-a")), usersFile())
	b := startDaemon(t, quota(clusterConfig(rdb.URL(), "shaper-b")), usersFile())
	a.waitMetric(`sockshaper_cluster_peers`, 2)
	src := sourceServer(t)
	var dl downloads
	for _, d := range []*process{a, b} {
		c, err := dialThroughFrom(t, "127.0.0.8", d.listen, "alice", src)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(15 * time.Second))
		dl.add(c)
	}
	dl.wg.Wait() // both downloads end: cut, or at the deadline
	got := dl.total.Load()
	t.Logf("alice moved %d bytes over both instances before her quota cut her", got)
	if got < 3<<20 || got > 4<<20+512<<10 {
		t.Errorf("alice moved %d bytes over both instances, want about her 3 MiB quota in all (not 3 MiB each)", got)
	}
	for _, d := range []*process{a, b} {
		d.waitMetric(`sockshaper_sessions_reset_total{reason="quota"}`, 1)
	}
}

package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/internal/redistest"
)

// fakePeer keeps an instance named name live in the cluster's Redis, as an
// attacker (or a broken instance) that can write there would: every 100 ms it
// refreshes its member entry and writes report as its report, until stop.
func fakePeer(t *testing.T, rc *redis.Client, name, report string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			rc.ZAdd(ctx, "sockshaper:members", redis.Z{Score: float64(time.Now().UnixMilli()), Member: name})
			rc.Set(ctx, "sockshaper:report:"+name, report, 750*time.Millisecond)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	stop = func() {
		cancel()
		<-done
		rc.ZRem(context.Background(), "sockshaper:members", name)
		rc.Del(context.Background(), "sockshaper:report:"+name)
	}
	t.Cleanup(stop)
	return stop
}

// hostileCluster is two instances sharing alice's limits (1 MiB/s, 10 sessions)
// through a Redis the test also writes to.
type hostileCluster struct {
	a, b *process
	rc   *redis.Client
}

// outagesFromData returns the errors of the outages the instances logged that
// were not timeouts: those a bad value in Redis caused. (An exchange that
// takes longer than a period, as one may on a machine busy enough, is an
// outage too, and says so: "i/o timeout".)
func (hc *hostileCluster) outagesFromData() []string {
	var errs []string
	for _, d := range []*process{hc.a, hc.b} {
		for _, rec := range d.logRecords() {
			err := fmt.Sprint(rec["err"])
			if strings.HasPrefix(fmt.Sprint(rec["msg"]), "redis unreachable") && !strings.Contains(err, "timeout") {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

func startHostileCluster(t *testing.T) *hostileCluster {
	rdb := redistest.Start(t)
	hc := &hostileCluster{
		a:  startDaemon(t, capConfig(rdb.URL(), "shaper-a", 10), usersFile()),
		b:  startDaemon(t, capConfig(rdb.URL(), "shaper-b", 10), usersFile()),
		rc: redis.NewClient(&redis.Options{Addr: rdb.Addr()}),
	}
	t.Cleanup(func() { hc.rc.Close() })
	hc.a.waitMetric(`sockshaper_cluster_peers`, 2)
	hc.b.waitMetric(`sockshaper_cluster_peers`, 2)
	return hc
}

// TestHostileSessionCounts: values written into Redis that no instance could
// honestly report do not move alice's cap of 10 across two instances: a peer
// that never expires claiming -1,000,000 of her sessions (it used to admit all
// 30 of a burst) or 1,000 of them (it used to lock her out everywhere).
func TestHostileSessionCounts(t *testing.T) {
	hc := startHostileCluster(t)
	echo := echoServer(t)
	ctx := context.Background()
	for _, tc := range []struct{ name, report string }{
		{"minus a million", `{"s":{"alice":-1000000}}`},
		{"a thousand", `{"s":{"alice":1000}}`},
	} {
		// A member scored +inf is never removed by age; its report never expires.
		hc.rc.ZAdd(ctx, "sockshaper:members", redis.Z{Score: math.Inf(1), Member: "evil"})
		hc.rc.Set(ctx, "sockshaper:report:evil", tc.report, 0)
		stop := fakePeer(t, hc.rc, "liar", tc.report) // and one that stays live
		time.Sleep(time.Second)
		got := burst(t, 30, echo, hc.a.listen, hc.b.listen)
		t.Logf("%s: %d of 30 admitted against a cap of 10", tc.name, len(got))
		if len(got) > 10 || len(got) < 8 {
			t.Errorf("%s: %d sessions admitted, want her cap of 10", tc.name, len(got))
		}
		closeAll(got)
		stop()
		hc.rc.ZRem(ctx, "sockshaper:members", "evil")
		hc.a.waitMetric(`sockshaper_sessions_active{app="other",command="connect",front="socks5"}`, 0)
		hc.b.waitMetric(`sockshaper_sessions_active{app="other",command="connect",front="socks5"}`, 0)
	}
}

// TestHostileDemand: a live peer claiming absurd demand on alice's download
// bucket neither cuts her to nothing (1e300 used to give her 0 B/s) nor lets
// her past her limit (1.7e308 overflowed to +Inf and gave her twice it): a
// demand above the limit counts as the limit. A report that is not JSON is
// skipped and counted, and it is not an outage (it used to be one, for as long
// as the report stayed).
func TestHostileDemand(t *testing.T) {
	const limit = 1 << 20
	hc := startHostileCluster(t)
	src := sourceServer(t)
	var dl downloads
	for _, c := range burst(t, 4, src, hc.a.listen, hc.b.listen) {
		dl.add(c)
	}
	dl.rate(1500 * time.Millisecond)
	r := dl.rate(2 * time.Second)
	t.Logf("no hostile peer: %.0f B/s", r)
	for _, tc := range []struct {
		name, report string
		min          float64 // of the limit
	}{
		// A peer that says it used the whole limit unpaced is given it (and a
		// fifth): alice's waiting sessions keep their floor, a fifth of the
		// limit shared with it.
		{"1e300", `{"b":{"u|alice||down":{"u":1e300,"s":1}}}`, 0.1},
		{"1.7e308", `{"b":{"u|alice||down":{"u":1.7e308,"s":1}}}`, 0.1},
		{"negative", `{"b":{"u|alice||down":{"u":-1e300,"w":true,"s":-5}}}`, 0.1},
		{"not JSON", `{"b":{"u|alice||down":{"u":1e3`, 0.85},
	} {
		stop := fakePeer(t, hc.rc, "liar", tc.report)
		dl.rate(1500 * time.Millisecond)
		r := dl.rate(2 * time.Second)
		stop()
		t.Logf("%s: alice moves %.0f B/s over both instances", tc.name, r)
		if r > 1.15*limit || r < tc.min*limit {
			t.Errorf("%s: alice moves %.0f B/s, want between %.0f and her limit %d (+15%%)", tc.name, r, tc.min*limit, limit)
		}
	}
	if errs := hc.outagesFromData(); len(errs) != 0 {
		t.Errorf("outages caused by a bad report: %q", errs)
	}
	for _, d := range []*process{hc.a, hc.b} {
		if n := d.metric(`sockshaper_cluster_bad_reports_total{reason="malformed"}`); n < 1 {
			t.Errorf("sockshaper_cluster_bad_reports_total{reason=\"malformed\"} = %v, want the report that is not JSON counted", n)
		}
		warned := 0
		for _, rec := range d.records("peer report skipped") {
			if rec["instance"] == "liar" {
				warned++
			}
		}
		if warned != 1 { // for two bad reports in a row: once until a good one
			t.Errorf("%d warnings about the bad peer's reports, want one", warned)
		}
	}
}

// TestHostileUsageField: a usage total in Redis that is not a number does not
// stop the quota totals of the users it names (the script used to fail, for
// every exchange carrying that user, until the hash expired): it is replaced
// by what the instance knew, and the exchange goes on.
func TestHostileUsageField(t *testing.T) {
	hc := startHostileCluster(t)
	src := sourceServer(t)
	ctx := context.Background()
	var dl downloads
	for _, c := range burst(t, 2, src, hc.a.listen, hc.b.listen) {
		dl.add(c)
	}
	var day string
	deadline := time.Now().Add(5 * time.Second)
	for day == "" && time.Now().Before(deadline) {
		keys, _ := hc.rc.Keys(ctx, "sockshaper:usage:day:*").Result()
		if len(keys) > 0 {
			day = keys[0]
		}
		time.Sleep(100 * time.Millisecond)
	}
	if day == "" {
		t.Fatal("no usage totals in Redis after 5 s of download")
	}
	// Poisoned up to three times: an answer lost to a timeout on a busy
	// machine loses its count of the values replaced, not the replacement.
	var counted float64
	for try := 0; try < 3 && counted < 1; try++ {
		hc.rc.HSet(ctx, day, "alice|down", "lots", "alice|up", "1e999")
		time.Sleep(2500 * time.Millisecond)
		down, err := hc.rc.HGet(ctx, day, "alice|down").Int64()
		t.Logf("alice's day total after the poisoned field: %d (err %v)", down, err)
		if err != nil || down < 100<<10 {
			t.Errorf("alice's download total in Redis: %d, %v; want it counting again", down, err)
		}
		counted = 0
		for _, d := range []*process{hc.a, hc.b} {
			counted += max(d.metric(`sockshaper_cluster_bad_reports_total{reason="usage"}`), 0)
		}
	}
	if errs := hc.outagesFromData(); len(errs) != 0 {
		t.Errorf("outages caused by a bad usage field: %q", errs)
	}
	if counted < 1 {
		t.Errorf("sockshaper_cluster_bad_reports_total{reason=\"usage\"} = %v over both instances, want the bad fields counted", counted)
	}
}

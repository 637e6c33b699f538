package cluster

import (
	"context"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/internal/redistest"
	"github.com/sockshaper/sockshaper/metrics"
)

// logCounter counts log records by message.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (l *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logCounter) WithGroup(string) slog.Handler            { return l }
func (l *logCounter) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs[r.Message]++
	return nil
}

func (l *logCounter) count(msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msgs[msg]
}

// hostileRedis is a node "a" and a client writing what an attacker would.
func hostileRedis(t *testing.T) (*Node, *redis.Client, *countingRecorder, *logCounter) {
	srv := redistest.Start(t)
	rec, logs := &countingRecorder{}, &logCounter{msgs: map[string]int{}}
	n, err := New(Options{URL: srv.URL(), Name: "a", Recorder: rec, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rc.Close() })
	return n, rc, rec, logs
}

// peer writes a live member name with report, as of now (or at score).
func peer(rc *redis.Client, name, report string, score float64) {
	ctx := context.Background()
	if score == 0 {
		score = float64(time.Now().UnixMilli())
	}
	rc.ZAdd(ctx, "sockshaper:members", redis.Z{Score: score, Member: name})
	rc.Set(ctx, "sockshaper:report:"+name, report, 0)
}

// TestHostileReportsAreSkipped: reports no instance writes are skipped (or
// their bad buckets), counted and logged once per instance, and the exchange
// goes on with the others: it is not an outage. A member written to never
// expire, or with a name longer than any instance's, is no peer.
func TestHostileReportsAreSkipped(t *testing.T) {
	n, rc, rec, logs := hostileRedis(t)
	ctx := context.Background()
	good := `{"b":{"k":{"u":100,"w":true,"s":2}}}`
	peer(rc, "good", good, 0)
	peer(rc, "not-json", `{"b":{"k":{"u":1e3`, 0)
	peer(rc, "overflow", `{"b":{"k":{"u":1e309}}}`, 0)
	peer(rc, "negative", `{"b":{"k":{"u":-1e300,"s":-3},"j":{"u":5}}}`, 0)
	peer(rc, "forever", good, math.Inf(1))
	peer(rc, "future", good, float64(time.Now().Add(time.Hour).UnixMilli()))
	peer(rc, strings.Repeat("x", MaxNameLen+1), good, 0)
	var v View
	for range 3 {
		v = n.Exchange(ctx, Report{})
	}
	if !v.Connected {
		t.Fatal("bad reports made an outage")
	}
	if _, ok := v.Others["good"]; !ok || len(v.Others) != 2 || v.Peers != 3 {
		t.Errorf("others: %v (%d peers); want good and negative's usable bucket", v.Others, v.Peers)
	}
	if d, ok := v.Others["negative"].Buckets["j"]; !ok || d.Used != 5 || len(v.Others["negative"].Buckets) != 1 {
		t.Errorf("negative's report: %+v, want only its bucket j", v.Others["negative"])
	}
	if got := rec.badCount(metrics.ClusterBadMalformed); got != 9 {
		t.Errorf("%d malformed reports counted over 3 exchanges, want 9 (3 each)", got)
	}
	if got := rec.badCount(metrics.ClusterBadOutOfRange); got != 3 {
		t.Errorf("%d reports out of range counted over 3 exchanges, want 3", got)
	}
	if got := logs.count("peer report skipped"); got != 4 {
		t.Errorf("%d warnings about peer reports, want one per bad instance: 4", got)
	}
	peer(rc, "not-json", good, 0) // mended: warned again if it breaks again
	n.Exchange(ctx, Report{})
	peer(rc, "not-json", `[`, 0)
	n.Exchange(ctx, Report{})
	if got := logs.count("peer report skipped"); got != 5 {
		t.Errorf("%d warnings after an instance's report broke again, want 5", got)
	}
}

// TestMembersOfTheWrongType: a members key that is not a sorted set is
// deleted, and the exchange after works.
func TestMembersOfTheWrongType(t *testing.T) {
	n, rc, rec, _ := hostileRedis(t)
	ctx := context.Background()
	rc.Set(ctx, "sockshaper:members", "not a set", 0)
	n.Exchange(ctx, Report{})
	if v := n.Exchange(ctx, Report{}); !v.Connected {
		t.Error("the exchange after a members key of the wrong type failed")
	}
	if rec.badCount(metrics.ClusterBadMalformed) != 1 {
		t.Errorf("bad values: %v, want the members key counted", rec.bad)
	}
}

// TestHostileUsageTotals: usage totals in Redis that are not counts (text, a
// fraction, a negative, 1e999, a key of another type) are replaced by what the
// instance knew, counted, and the totals of every user go on: the script used
// to fail for every exchange that carried the user.
func TestHostileUsageTotals(t *testing.T) {
	n, rc, rec, _ := hostileRedis(t)
	ctx := context.Background()
	rep := func(user string, added, known int64) Report {
		return Report{Usage: &Usage{Day: "2026-11-25", Month: "2026-11", Users: []UserUsage{
			{User: user, Added: [2]int64{added, added}, DayKnown: [2]int64{known, known}, MonthKnown: [2]int64{known, known}},
			{User: "bob", Added: [2]int64{1, 1}}}}}
	}
	day, month := "sockshaper:usage:day:2026-11-25", "sockshaper:usage:month:2026-11"
	for _, bad := range []string{"lots", "1.5", "-7", "1e999", "nan", "1e16"} {
		rc.HSet(ctx, day, "alice|up", bad, "alice|down", bad)
		v := n.Exchange(ctx, rep("alice", 10, 1000))
		if !v.Connected || v.Usage == nil {
			t.Fatalf("%q: exchange %+v, want connected with totals", bad, v)
		}
		if got := v.Usage.Users["alice"].Day; got != [2]int64{1010, 1010} {
			t.Errorf("%q: alice's day totals %v, want what the instance knew and added: 1010", bad, got)
		}
	}
	if got := rec.badCount(metrics.ClusterBadUsage); got != 12 {
		t.Errorf("%d bad usage totals counted, want 12", got)
	}
	rc.Del(ctx, month)
	rc.Set(ctx, month, "not a hash", 0)
	if v := n.Exchange(ctx, rep("alice", 1, 0)); v.Usage == nil || v.Usage.Users["alice"].Month[0] != 1 {
		t.Errorf("month key of the wrong type: %+v, want it replaced", v.Usage)
	}
	if got, _ := rc.HGet(ctx, day, "alice|up").Result(); got != "1011" {
		t.Errorf("alice's day upload total in Redis: %q, want 1011", got)
	}
}

// TestHostileSlotCounts: a live peer's session counts that are not counts
// (text, a key of the wrong type) count as none and are reported; a count
// above the cap counts as the cap (no instance can hold more): the user is
// refused, and nothing overflows. This instance's own hash of the wrong type
// is replaced.
func TestHostileSlotCounts(t *testing.T) {
	n, rc, rec, _ := hostileRedis(t)
	ctx := context.Background()
	exchangeOK(t, n, Report{})
	peer(rc, "text", `{}`, 0)
	rc.HSet(ctx, "sockshaper:slots:text", "alice", "lots", "bob", "1e999:5", "carol", "99999999999999999999999:1")
	peer(rc, "typed", `{}`, 0)
	rc.Set(ctx, "sockshaper:slots:typed", "not a hash", 0)
	if got := reserveAll([]*Node{n}, "alice", 4, 4); sum(got) != 4 {
		t.Errorf("alice got %v of 4 slots beside counts that are not counts, want all", got)
	}
	if got := rec.badCount(metrics.ClusterBadSlots); got < 2 {
		t.Errorf("%d bad slot values counted, want both peers' counted in every batch", got)
	}
	if n.Slots().Reserve(ctx, "carol", 4) {
		t.Error("carol got a slot while a peer claims more than her cap")
	}
	rc.Del(ctx, "sockshaper:slots:a")
	rc.Set(ctx, "sockshaper:slots:a", "not a hash", 0)
	if !n.Slots().Reserve(ctx, "dave", 4) {
		t.Error("dave got no slot with this instance's hash of the wrong type")
	}
	if typ, _ := rc.Type(ctx, "sockshaper:slots:a").Result(); typ != "hash" {
		t.Errorf("this instance's slots key is a %s after a reservation, want a hash", typ)
	}
}

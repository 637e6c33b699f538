package cluster

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/internal/redistest"
)

// Tests that kill mutants gremlins found alive in this package (see
// docs/testing.md): each pins a behaviour no other test checked.

// outageRecorder counts what a Node records, outages included.
type outageRecorder struct {
	mu                 sync.Mutex
	ok, fails, outages int
}

func (r *outageRecorder) ClusterExchange(ok bool, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ok {
		r.ok++
	} else {
		r.fails++
	}
}

func (r *outageRecorder) ClusterOutage() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outages++
}

func (r *outageRecorder) ClusterPeers(int)          {}
func (r *outageRecorder) ClusterBadReport(string)   {}
func (r *outageRecorder) ClusterReservation(string) {}

// TestRecorderCountsExchangesAndOneOutage: each exchange is recorded with its
// outcome, and an outage of Redis once however many exchanges fail in it.
func TestRecorderCountsExchangesAndOneOutage(t *testing.T) {
	srv := redistest.Start(t)
	rec := &outageRecorder{}
	n := newNode(t, srv.URL(), "a", rec)
	ctx := context.Background()
	for range 2 {
		n.Exchange(ctx, Report{})
	}
	srv.Stop()
	for range 3 {
		n.Exchange(ctx, Report{})
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.ok != 2 || rec.fails != 3 || rec.outages != 1 {
		t.Errorf("recorded %d ok, %d failed exchanges and %d outages; want 2, 3 and 1", rec.ok, rec.fails, rec.outages)
	}
}

// TestFourInstancesSeeEachOther: every live instance is in every view, not
// only the first members.
func TestFourInstancesSeeEachOther(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	var nodes []*Node
	for _, name := range []string{"a", "b", "c", "d"} {
		nodes = append(nodes, newNode(t, srv.URL(), name, nil))
	}
	for _, n := range nodes {
		n.Exchange(ctx, Report{})
	}
	for _, n := range nodes {
		if v := n.Exchange(ctx, Report{}); v.Peers != 4 || len(v.Others) != 3 {
			t.Errorf("%s sees %d instances (%v), want 4", n.Name(), v.Peers, v.Others)
		}
	}
}

// TestKeyPrefix: Options.Prefix begins every key; the default is "sockshaper".
func TestKeyPrefix(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	campus, err := New(Options{URL: srv.URL(), Name: "a", Prefix: "campus-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer campus.Close()
	campus.Exchange(ctx, Report{})
	plain := newNode(t, srv.URL(), "b", nil)
	plain.Exchange(ctx, Report{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	for _, key := range []string{"campus-a:members", "campus-a:report:a", "sockshaper:members", "sockshaper:report:b"} {
		if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 1 {
			t.Errorf("key %s: exists %d, %v; want it written", key, n, err)
		}
	}
}

// TestIdleInstanceKeepsItsFloor: an instance that used next to nothing beside
// one that waits keeps minUnsaturated of the limit, to grow from.
func TestIdleInstanceKeepsItsFloor(t *testing.T) {
	const limit = 1000.0
	got := Allocate(limit, "idle", map[string]Demand{
		"idle": {Used: 0, Sessions: 1},
		"busy": {Used: limit, Waiting: true, Sessions: 5},
	})
	if want := minUnsaturated * limit; math.Abs(got-want) > 1e-9 {
		t.Errorf("idle instance's part %v, want %v", got, want)
	}
}

// TestUsageTotalsOfSeveralUsers: the usage script's answer, four totals per
// user, is read for each user in order.
func TestUsageTotalsOfSeveralUsers(t *testing.T) {
	u := &Usage{Day: "2026-03-10", Month: "2026-03", Users: []UserUsage{{User: "alice"}, {User: "bob"}}}
	n := newNode(t, "redis://127.0.0.1:1", "a", nil) // answers are read without Redis
	cmd := redis.NewCmd(context.Background())
	cmd.SetVal([]any{int64(1), int64(2), int64(3), int64(4), int64(5), int64(6), int64(7), int64(8), int64(0)})
	got := n.usageTotals(u, cmd)
	if got == nil {
		t.Fatal("no totals read")
	}
	if got.Users["alice"] != (UserTotals{Day: [2]int64{1, 2}, Month: [2]int64{3, 4}}) || got.Users["bob"] != (UserTotals{Day: [2]int64{5, 6}, Month: [2]int64{7, 8}}) {
		t.Errorf("totals %+v", got.Users)
	}
	cmd.SetVal([]any{int64(1), int64(2), int64(3), int64(4), int64(0)})
	if got := n.usageTotals(u, cmd); got != nil {
		t.Error("four totals for two users read as totals")
	}
}

package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sockshaper/sockshaper/internal/redistest"
	"github.com/sockshaper/sockshaper/metrics"
)

// TestOutageKeepsLocalShareThenForgets: with Redis down, an instance that knew
// one peer admits a user's sessions up to half her cap, at once (no wait for
// Redis per session), and keeps the peer's part of every limit out of its
// view; once the peer has been out of sight for peerMemory it is forgotten:
// the whole cap, and a view of this instance alone.
func TestOutageKeepsLocalShareThenForgets(t *testing.T) {
	srv := redistest.Start(t)
	rec := &countingRecorder{}
	a, b := newNode(t, srv.URL(), "a", rec), newNode(t, srv.URL(), "b", nil)
	a.memory = 2 * time.Second
	ctx := context.Background()
	exchangeOK(t, b, Report{Buckets: map[string]Demand{"k": {Used: 1}}})
	if v := exchangeOK(t, a, Report{}); v.Peers != 2 {
		t.Fatalf("a sees %d instances, want 2", v.Peers)
	}
	srv.Stop()
	if v := a.Exchange(ctx, Report{}); v.Connected || v.Peers != 2 || len(v.Others) != 1 {
		t.Fatalf("a's view in the outage: %+v, want the last one, not connected", v)
	}
	start := time.Now()
	got := reserveAll([]*Node{a}, "alice", 4, 4)
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("4 reservations during the outage took %v: they waited for Redis", d)
	}
	if sum(got) != 2 {
		t.Errorf("during the outage a granted %v of alice's cap of 4, want its half: 2", got)
	}
	time.Sleep(time.Until(start.Add(a.memory)))
	v := a.Exchange(ctx, Report{})
	if v.Connected || v.Peers != 1 || len(v.Others) != 0 {
		t.Errorf("a's view after peerMemory without Redis: %+v, want a alone", v)
	}
	if got := reserveAll([]*Node{a}, "alice", 4, 4); sum(got) != 2 {
		t.Errorf("once the peer is forgotten a granted %v more, want the 2 left of the whole cap", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.reservations[metrics.ClusterLocalReserved] != 4 || rec.reservations[metrics.ClusterLocalRefused] != 4 {
		t.Errorf("reservations recorded: %v, want 4 local_reserved and 4 local_refused", rec.reservations)
	}
}

// TestSlowRedisReservationFallsBack: a Redis that does not answer (paused)
// delays reservations by two reserveTimeouts at most (the batch on its way,
// then their own), and they are then decided on this instance's part of the
// cap.
func TestSlowRedisReservationFallsBack(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL(), "a", nil), newNode(t, srv.URL(), "b", nil)
	ctx := context.Background()
	exchangeOK(t, b, Report{})
	exchangeOK(t, a, Report{})
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	if err := rc.Do(ctx, "CLIENT", "PAUSE", 2000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got := reserveAll([]*Node{a}, "alice", 3, 4)
	d := time.Since(start)
	t.Logf("3 reservations against a paused Redis: %v, in %v", got, d)
	if d > 2*reserveTimeout+400*time.Millisecond {
		t.Errorf("reservations against a paused Redis took %v, want at most about %v", d, 2*reserveTimeout)
	}
	if sum(got) != 2 {
		t.Errorf("a granted %v of 3 with Redis paused, want its half of the cap of 4", got)
	}
}

// TestPeersForgottenDuringOutage: a dead peer's part of a limit comes back to
// the survivor once peerMemory has passed without Redis, so that the split
// the last view implied does not stay for the whole outage.
func TestPeersForgottenDuringOutage(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL(), "a", nil), newNode(t, srv.URL(), "b", nil)
	a.memory = 1500 * time.Millisecond
	ctx := context.Background()
	exchangeOK(t, b, Report{})
	exchangeOK(t, a, Report{})
	srv.Stop()
	for start := time.Now(); time.Since(start) < a.memory-300*time.Millisecond; time.Sleep(Period) {
		if v := a.Exchange(ctx, Report{}); v.Peers != 2 {
			t.Fatalf("%v into the outage a counts %d instances, want the 2 it knew", time.Since(start), v.Peers)
		}
	}
	time.Sleep(600 * time.Millisecond)
	if v := a.Exchange(ctx, Report{}); v.Peers != 1 || v.Others != nil {
		t.Errorf("after peerMemory a's view is %+v, want a alone", v)
	}
	if p := a.peers(time.Now()); p != 1 {
		t.Errorf("a shares its caps with %d instances, want none but itself", p)
	}
}

// TestGoneClientIsRefused: a reservation whose session's client left (its
// context ended) is refused, not decided on this instance's part of the cap as
// if Redis were slow, and the next one still asks Redis.
func TestGoneClientIsRefused(t *testing.T) {
	srv := redistest.Start(t)
	rec := &countingRecorder{}
	a, b := newNode(t, srv.URL(), "a", rec), newNode(t, srv.URL(), "b", nil)
	exchangeOK(t, b, Report{})
	exchangeOK(t, a, Report{})
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	if a.Slots().Reserve(gone, "alice", 4) {
		t.Error("a session whose client left got a slot")
	}
	if !a.Slots().Reserve(context.Background(), "alice", 4) {
		t.Error("the next session got no slot")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.reservations[metrics.ClusterLocalReserved] != 0 || rec.reservations[metrics.ClusterReserved] != 1 {
		t.Errorf("reservations recorded: %v, want the second one reserved in Redis", rec.reservations)
	}
}

// TestClientLeavesWhileRedisIsSlow: a session whose client leaves while its
// reservation waits for a slow Redis (queued, or in the batch on its way) is
// refused, and not counted: this instance's count of the user is what it
// admitted.
func TestClientLeavesWhileRedisIsSlow(t *testing.T) {
	srv := redistest.Start(t)
	a, b := newNode(t, srv.URL(), "a", nil), newNode(t, srv.URL(), "b", nil)
	exchangeOK(t, b, Report{})
	exchangeOK(t, a, Report{})
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rc.Close()
	if err := rc.Do(context.Background(), "CLIENT", "PAUSE", 2000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	var admitted atomic.Int32
	var wg sync.WaitGroup
	reserve := func(ctx context.Context) {
		if a.Slots().Reserve(ctx, "alice", 10) {
			admitted.Add(1)
		}
	}
	wg.Go(func() { reserve(context.Background()) }) // leads the first batch
	time.Sleep(50 * time.Millisecond)
	for _, leaveAfter := range []time.Duration{100 * time.Millisecond, 350 * time.Millisecond} {
		ctx, cancel := context.WithTimeout(context.Background(), leaveAfter)
		defer cancel()
		wg.Go(func() {
			if a.Slots().Reserve(ctx, "alice", 10) {
				t.Errorf("a session whose client left after %v got a slot", leaveAfter)
			}
		})
	}
	wg.Go(func() { reserve(context.Background()) })
	wg.Wait()
	a.slots.mu.Lock()
	defer a.slots.mu.Unlock()
	if held := a.slots.held["alice"].n; held != int(admitted.Load()) {
		t.Errorf("a counts %d of alice's sessions, having admitted %d", held, admitted.Load())
	}
}

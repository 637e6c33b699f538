package shaping

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

func TestEvictIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(campus()) // IdleEviction 10m
		live := r.Acquire(Who{User: "alice"}, "web")
		idle := r.Acquire(Who{User: "bob"}, "skype")
		idle.Release()
		steps := []struct {
			sleep   time.Duration
			do      func()
			dropped int
			users   int
		}{
			{9 * time.Minute, nil, 0, 2},
			{time.Minute, nil, 1, 1},      // bob idle for exactly IdleEviction
			{time.Hour, nil, 0, 1},        // alice's lease is live
			{0, live.Release, 0, 1},       // alice just left
			{10 * time.Minute, nil, 1, 0}, // and is gone
		}
		for i, s := range steps {
			time.Sleep(s.sleep)
			if s.do != nil {
				s.do()
			}
			if got := r.EvictIdle(time.Now()); got != s.dropped {
				t.Errorf("step %d: EvictIdle dropped %d, want %d", i, got, s.dropped)
			}
			if got := r.Users(); got != s.users {
				t.Errorf("step %d: Users() = %d, want %d", i, got, s.users)
			}
		}
		if len(r.buckets) != 0 {
			t.Errorf("buckets left after every user went: %d", len(r.buckets))
		}
		back := r.Acquire(Who{User: "bob"}, "skype")
		if back.chains[download].buckets[0] == idle.chains[download].buckets[0] {
			t.Error("returning user got the evicted buckets")
		}
		back.Release()
	})
}

// TestEvictIdleBounded acquires and releases 100,000 distinct users three times
// over and checks that eviction empties the registry and gives the memory back:
// the user map is rebuilt, not left at its peak size.
func TestEvictIdleBounded(t *testing.T) {
	const users = 100_000
	cfg := campus()
	r := NewRegistry(cfg)
	base := heapInUse()
	for round := range 3 {
		for i := range users {
			r.Acquire(Who{User: userName(round*users + i)}, "skype").Release()
		}
		full := heapInUse()
		if got := r.Users(); got != users {
			t.Fatalf("round %d: Users() = %d, want %d", round, got, users)
		}
		if got := r.EvictIdle(time.Now()); got != 0 {
			t.Fatalf("round %d: EvictIdle before IdleEviction dropped %d", round, got)
		}
		if got := r.EvictIdle(time.Now().Add(cfg.IdleEviction)); got != users {
			t.Fatalf("round %d: EvictIdle dropped %d, want %d", round, got, users)
		}
		if r.Users() != 0 || r.ActiveUsers() != 0 || len(r.buckets) != 0 || r.peak != 0 {
			t.Fatalf("round %d: left users=%d active=%d buckets=%d peak=%d",
				round, r.Users(), r.ActiveUsers(), len(r.buckets), r.peak)
		}
		after := heapInUse()
		t.Logf("round %d: heap %d KiB at start, %d KiB with %d users, %d KiB after eviction",
			round, base/kib, full/kib, users, after/kib)
		if after > base+mib {
			t.Errorf("round %d: heap grew from %d to %d KiB after eviction", round, base/kib, after/kib)
		}
	}
	runtime.KeepAlive(r)
}

// TestShrinkHysteresis checks that the map is rebuilt only once it falls to a
// quarter of its peak, so rebuilds stay rare.
func TestShrinkHysteresis(t *testing.T) {
	r := NewRegistry(configs.Shaping{IdleEviction: time.Minute})
	now := time.Now()
	for i := range 4 * minRebuild {
		r.Acquire(Who{User: userName(i)}, "web").Release()
	}
	keep := make([]*Lease, 0, minRebuild)
	for i := range minRebuild + 1 {
		keep = append(keep, r.Acquire(Who{User: userName(i)}, "web"))
	}
	r.EvictIdle(now.Add(time.Hour))
	if r.Users() != minRebuild+1 || r.peak != 4*minRebuild {
		t.Errorf("above a quarter: users=%d peak=%d, want %d and %d (no rebuild)", r.Users(), r.peak, minRebuild+1, 4*minRebuild)
	}
	keep[0].Release()
	r.EvictIdle(time.Now().Add(time.Hour))
	if r.Users() != minRebuild || r.peak != minRebuild {
		t.Errorf("at a quarter: users=%d peak=%d, want %d and %d (rebuilt)", r.Users(), r.peak, minRebuild, minRebuild)
	}
}

func TestRegistryRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := campus()
		cfg.IdleEviction = time.Minute // Run evicts every 15 s
		r := NewRegistry(cfg)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			r.Run(ctx)
			close(done)
		}()
		r.Acquire(Who{User: "bob"}, "web").Release()
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if got := r.Users(); got != 1 {
			t.Errorf("Users() after 59 s idle = %d, want 1", got)
		}
		time.Sleep(2 * time.Second) // the 60 s pass evicts bob
		synctest.Wait()
		if got := r.Users(); got != 0 {
			t.Errorf("Users() after 61 s idle = %d, want 0", got)
		}

		cfg.IdleEviction = 0 // reloaded: every second, at least
		r.Update(cfg)
		time.Sleep(15 * time.Second) // the pass scheduled before the reload
		r.Acquire(Who{User: "carol"}, "web").Release()
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if got := r.Users(); got != 0 {
			t.Errorf("Users() 1.5 s after leaving with IdleEviction 0 = %d, want 0", got)
		}
		cancel()
		<-done
	})
}

// TestRegistryConcurrent runs sessions, reloads that turn limits on and off and
// change bursts, and eviction all at once, for the race detector.
func TestRegistryConcurrent(t *testing.T) {
	fast := campus()
	fast.Groups = map[string]configs.Limit{"students": {Upload: 1 << 30, Download: 1 << 30, Burst: 512}}
	cfgs := []configs.Shaping{campus(), {}, fast}
	for i := range cfgs {
		cfgs[i].Global = configs.Limit{Upload: 1 << 30, Download: 1 << 30}
	}
	r := NewRegistry(cfgs[0])
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 300 {
				l := r.Acquire(Who{User: userName(i % 3)}, []string{"web", "skype"}[j%2])
				l.Download().Allow(100)
				if _, err := l.Upload().Wait(ctx, 1000); err != nil {
					t.Error(err)
				}
				_ = l.Upload().ChunkSize()
				l.Release()
			}
		})
	}
	wg.Go(func() {
		for i := range 300 {
			r.Update(cfgs[i%len(cfgs)])
			r.EvictIdle(time.Now().Add(time.Hour))
			r.ActiveUsers()
		}
	})
	wg.Wait()
	if got := r.ActiveUsers(); got != 0 {
		t.Errorf("ActiveUsers() after all released = %d", got)
	}
}

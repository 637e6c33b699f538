package shaping

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// globalOnly limits the global download to rate bytes/s with a burst of rate
// bytes (a second's worth).
func globalOnly(rate configs.Rate) configs.Shaping {
	return configs.Shaping{Global: configs.Limit{Download: rate, Burst: configs.ByteSize(rate)}}
}

// TestTurnCancel: a session waiting, holding its user's turn, for the user's
// last refill on a shared bucket to come due gives up at once when its context
// ends, taking nothing; a session that drew bytes from the user's balance and
// ends before they are paid for gives them back to the user, whose next
// session passes them when they are due, without reserving again.
func TestTurnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(globalOnly(1000))
		first, second := r.Acquire(Who{User: "u"}, Other), r.Acquire(Who{User: "u"}, Other)
		ctx1, cancel1 := context.WithCancel(context.Background())
		if _, err := first.Download().Wait(ctx1, 1000); err != nil { // the burst
			t.Fatal(err)
		}
		waiting := make(chan error, 1)
		go func() { // refills 1000 bytes, due in a second, and waits for them
			_, err := first.Download().Wait(ctx1, 1000)
			waiting <- err
		}()
		synctest.Wait()
		start := time.Now()
		ctx2, cancel2 := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel2)
		waited, err := second.Download().Wait(ctx2, 500) // the balance is empty: waits for the refill
		if err != context.Canceled || time.Since(start) != 100*time.Millisecond || waited != 100*time.Millisecond {
			t.Fatalf("Wait for a refill to come due = %v, %v after %v; want canceled after 100ms", waited, err, time.Since(start))
		}
		cancel1() // the first session gives up 100 ms into its second
		if err := <-waiting; err != context.Canceled {
			t.Fatalf("first session's Wait = %v, want canceled", err)
		}
		tokens := r.bucketOf(levelGlobal, "", "", download).limiter().TokensAt(start.Add(time.Second))
		// Its 1000 bytes are the user's again, paid for at the refill's due time.
		for _, want := range []time.Duration{900 * time.Millisecond, 0} {
			if waited, err := second.Download().Wait(context.Background(), 500); err != nil || waited != want {
				t.Fatalf("Wait(500) from the given-back bytes = %v, %v; want %v", waited, err, want)
			}
		}
		if got := r.bucketOf(levelGlobal, "", "", download).limiter().TokensAt(start.Add(time.Second)); got != tokens {
			t.Errorf("the bucket's tokens went from %v to %v: the given-back bytes were reserved again", tokens, got)
		}
	})
}

// TestTurnReload: a reload that lifts the shared limit while one of a user's
// sessions holds the user's turn, waiting for the last refill to come due,
// lets the user's other sessions through at once; one that sets it again puts
// them back in turn, and the users share fairly again.
func TestTurnReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(globalOnly(1000))
		a, b, other := r.Acquire(Who{User: "u"}, Other), r.Acquire(Who{User: "u"}, Other), r.Acquire(Who{User: "u"}, Other)
		a.Download().Wait(context.Background(), 1000) // the burst
		var done sync.WaitGroup
		for _, l := range []*Lease{a, b} { // a refills, due in a second; b waits for it, holding the turn
			done.Go(func() { l.Download().Wait(context.Background(), 1000) })
			synctest.Wait()
		}
		r.Update(configs.Shaping{})
		start := time.Now()
		if _, err := other.Download().Wait(context.Background(), 1<<20); err != nil || time.Since(start) != 0 {
			t.Fatalf("Wait with the limit lifted = %v after %v; want at once", err, time.Since(start))
		}
		done.Wait()
		for _, l := range []*Lease{a, b, other} {
			l.Release()
		}

		r.Update(globalOnly(100_000))
		moved := runUsers(r, []userLoad{{"heavy", "", 50}, {"light", "", 1}}, 3, 5*time.Second)
		got := userBytes(moved, 1, 3)
		within(t, "light user's bytes after the limit came back", got[1], got[0], 0.2)
		within(t, "bytes of both", got[0]+got[1], 100_000*10, 0.05)
	})
}

// TestSharedBucketCountsUsers: a bucket users share counts the users holding
// it, not their sessions, for the cluster's split (share.go); a lease released
// twice counts once.
func TestSharedBucketCountsUsers(t *testing.T) {
	r := NewRegistry(campus())
	var leases []*Lease
	for range 3 {
		leases = append(leases, r.Acquire(Who{User: "alice"}, "skype"))
	}
	leases = append(leases, r.Acquire(Who{User: "bob"}, "skype"), r.Acquire(Who{User: "bob"}, "web"))
	global, skype := r.bucketOf(levelGlobal, "", "", download), r.bucketOf(levelApp, "", "skype", download)
	if g, s := global.users.Load(), skype.users.Load(); g != 2 || s != 2 || global.sessions.Load() != 5 {
		t.Fatalf("users on the global bucket %d, on skype's total %d (global sessions %d); want 2, 2 (5)", g, s, global.sessions.Load())
	}
	leases[3].Release()
	leases[3].Release()
	if g, s := global.users.Load(), skype.users.Load(); g != 2 || s != 1 {
		t.Fatalf("after bob's skype session: %d and %d users, want 2 (bob's web session) and 1", g, s)
	}
	for _, l := range leases {
		l.Release()
	}
	if g, s := global.users.Load(), skype.users.Load(); g != 0 || s != 0 {
		t.Errorf("after every release: %d and %d users, want 0", g, s)
	}
}

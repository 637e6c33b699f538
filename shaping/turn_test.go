package shaping

import (
	"context"
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

// TestTurnCancel: a session waiting for its user's turn on a shared bucket
// gives up at once when its context ends, taking nothing; the session holding
// the turn gives it and its tokens back when its own context ends, and the
// next session of the user takes the turn at once.
func TestTurnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(globalOnly(1000))
		first, second := r.Acquire("u", Other), r.Acquire("u", Other)
		ctx1, cancel1 := context.WithCancel(context.Background())
		if _, err := first.Download().Wait(ctx1, 1000); err != nil { // the burst
			t.Fatal(err)
		}
		holding := make(chan error, 1)
		go func() { // holds the turn for a second: the bucket is empty
			_, err := first.Download().Wait(ctx1, 1000)
			holding <- err
		}()
		synctest.Wait()
		ctx2, cancel2 := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel2)
		start := time.Now()
		waited, err := second.Download().Wait(ctx2, 500)
		if err != context.Canceled || time.Since(start) != 100*time.Millisecond || waited != 100*time.Millisecond {
			t.Fatalf("Wait for a held turn = %v, %v after %v; want canceled after 100ms", waited, err, time.Since(start))
		}
		cancel1() // the holder gives up 100 ms into its second
		if err := <-holding; err != context.Canceled {
			t.Fatalf("holder's Wait = %v, want canceled", err)
		}
		// The holder's 1000 tokens came back: 100 ms of refill covers 100 bytes.
		start = time.Now()
		if waited, err := second.Download().Wait(context.Background(), 100); err != nil || waited != 0 {
			t.Fatalf("Wait after the holder gave up = %v, %v; want the turn and tokens at once", waited, err)
		}
		if time.Since(start) != 0 {
			t.Errorf("the turn came after %v, want at once", time.Since(start))
		}
	})
}

// TestTurnReload: a reload that lifts the shared limit while a session holds
// its user's turn, sleeping, lets the user's other sessions through at once;
// one that sets it again puts them back in turn, and the users share fairly
// again.
func TestTurnReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := NewRegistry(globalOnly(1000))
		holder, other := r.Acquire("u", Other), r.Acquire("u", Other)
		holder.Download().Wait(context.Background(), 1000) // the burst
		done := make(chan struct{})
		go func() {
			holder.Download().Wait(context.Background(), 1000) // a second, holding the turn
			close(done)
		}()
		synctest.Wait()
		r.Update(configs.Shaping{})
		start := time.Now()
		if _, err := other.Download().Wait(context.Background(), 1<<20); err != nil || time.Since(start) != 0 {
			t.Fatalf("Wait with the limit lifted = %v after %v; want at once", err, time.Since(start))
		}
		<-done
		holder.Release()
		other.Release()

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
		leases = append(leases, r.Acquire("alice", "skype"))
	}
	leases = append(leases, r.Acquire("bob", "skype"), r.Acquire("bob", "web"))
	global, skype := r.global[download], r.apps["skype"].total[download]
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

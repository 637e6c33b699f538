package shaping

import (
	"context"
	"io"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

const (
	kib = 1 << 10
	mib = 1 << 20
)

// endless is a source that always has a full buffer to give.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return len(p), nil }

func chainOf(bks ...*bucket) *Chain {
	c := &Chain{}
	for _, bk := range bks {
		c.add(bk, nil)
	}
	return c
}

// copyFor copies an endless source through chain for d of bubble time and
// returns the bytes written.
func copyFor(t *testing.T, chain *Chain, d time.Duration) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	n, err := Copy(ctx, io.Discard, endless{}, chain, nil)
	if err != context.DeadlineExceeded {
		t.Fatalf("Copy error = %v, want deadline exceeded", err)
	}
	return n
}

// within fails t unless got is within tol (a fraction) of want.
func within(t *testing.T, what string, got, want int64, tol float64) {
	t.Helper()
	if dev := math.Abs(float64(got-want)) / float64(want); dev > tol {
		t.Errorf("%s = %d, want %d ± %.1f%% (off by %.2f%%)", what, got, want, tol*100, dev*100)
	}
}

func TestDefaultBurst(t *testing.T) {
	tests := []struct {
		rate configs.Rate
		want int
	}{
		{1, minDefaultBurst},
		{125_000, minDefaultBurst}, // 1 Mbit/s: 50 ms is 6 KiB, the floor wins
		{4 * mib, 4 * mib / 20},
		{125_000_000, 6_250_000}, // 1 Gbit/s
		{1 << 40, maxBurst},
	}
	for _, tc := range tests {
		if got := defaultBurst(tc.rate); got != tc.want {
			t.Errorf("defaultBurst(%d) = %d, want %d", tc.rate, got, tc.want)
		}
		if got := defaultBurst(tc.rate); got < minDefaultBurst {
			t.Errorf("defaultBurst(%d) = %d is below its floor", tc.rate, got)
		}
	}
}

func TestChunkSize(t *testing.T) {
	tests := []struct {
		name     string
		buckets  []*bucket
		sessions int32 // leases holding each bucket
		want     int
	}{
		{"empty chain", nil, 2, MaxChunk},
		{"all unlimited", []*bucket{newBucket(0, 0), newBucket(0, 512)}, 2, MaxChunk},
		{"below 3.2 MiB/s: 32 KiB", []*bucket{newBucket(2*mib, 0)}, 2, 32 * kib},
		{"10 ms at the rate, in 32 KiB units", []*bucket{newBucket(64*mib, 0)}, 2, 640 * kib},
		{"fast rate capped", []*bucket{newBucket(1024*mib, 0)}, 2, MaxChunk},
		{"slowest rate binds", []*bucket{newBucket(32*mib, 0), newBucket(8*mib, 0)}, 2, 64 * kib},
		{"small burst raised", []*bucket{newBucket(4*mib, 512)}, 2, MinChunk},
		{"smallest burst", []*bucket{newBucket(4*mib, 16*kib), newBucket(mib, 8*kib), newBucket(0, 1)}, 2, 8 * kib},
		{"alone: 40 ms at the rate", []*bucket{newBucket(50*mib, 0)}, 1, 2 * mib},
		{"alone: below 0.8 MiB/s: 32 KiB", []*bucket{newBucket(512*kib, 0)}, 1, 32 * kib},
		{"alone: burst still binds", []*bucket{newBucket(50*mib, 256*kib)}, 1, 256 * kib},
		{"alone: capped", []*bucket{newBucket(200*mib, 0)}, 1, MaxChunk},
	}
	for _, tc := range tests {
		for _, bk := range tc.buckets {
			bk.sessions.Store(tc.sessions)
		}
		if got := chainOf(tc.buckets...).ChunkSize(); got != tc.want {
			t.Errorf("%s: ChunkSize() = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestChunkSizeFollowsSessions checks that a user's chain takes large chunks
// while the user has one session, and fine ones while a second session shares the
// user's bucket.
func TestChunkSizeFollowsSessions(t *testing.T) {
	r := NewRegistry(oneGroup(50 * mib))
	first := r.Acquire(Who{User: "alice"}, Other)
	if got, want := first.Download().ChunkSize(), 2*mib; got != want {
		t.Fatalf("one session: ChunkSize() = %d, want %d", got, want)
	}
	second := r.Acquire(Who{User: "alice"}, Other)
	for _, l := range []*Lease{first, second} {
		if got, want := l.Download().ChunkSize(), 512*kib; got != want {
			t.Fatalf("two sessions: ChunkSize() = %d, want %d", got, want)
		}
	}
	other := r.Acquire(Who{User: "bob"}, Other)
	if got, want := other.Download().ChunkSize(), 2*mib; got != want {
		t.Fatalf("another user's only session: ChunkSize() = %d, want %d", got, want)
	}
	second.Release()
	second.Release() // idempotent: must not count twice
	if got, want := first.Download().ChunkSize(), 2*mib; got != want {
		t.Fatalf("after the second session ended: ChunkSize() = %d, want %d", got, want)
	}
}

// TestChainRate checks the long-run rate: 4 MiB/s for 10 s is 40 MiB plus the
// burst, within 2%, both through Wait directly and through Copy.
func TestChainRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := chainOf(newBucket(4*mib, 0))
		var n int64
		for start := time.Now(); time.Since(start) < 10*time.Second; n += 32 * kib {
			if _, err := c.Wait(context.Background(), 32*kib); err != nil {
				t.Fatal(err)
			}
		}
		within(t, "Wait bytes in 10 s", n, 40*mib, 0.02)
	})
	synctest.Test(t, func(t *testing.T) {
		within(t, "Copy bytes in 10 s", copyFor(t, chainOf(newBucket(4*mib, 0)), 10*time.Second), 40*mib, 0.02)
	})
}

// TestChainSmallBurst checks that a burst below MinChunk still shapes: Wait
// splits each chunk into pieces the bucket can grant.
func TestChainSmallBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := chainOf(newBucket(10*kib, 512))
		within(t, "bytes in 10 s", copyFor(t, c, 10*time.Second), 100*kib, 0.02)
	})
}

func TestChainWaitSplits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := chainOf(newBucket(64*kib, 64*kib), newBucket(0, 0))
		waited, err := c.Wait(context.Background(), 640*kib)
		if err != nil || waited != 9*time.Second {
			t.Fatalf("Wait(640 KiB) at 64 KiB/s from a full 64 KiB bucket = %v, %v; want 9s", waited, err)
		}
	})
}

func TestChainWaitUnlimited(t *testing.T) {
	c := chainOf(newBucket(0, 0), newBucket(0, 0))
	if waited, err := c.Wait(context.Background(), 1<<30); waited != 0 || err != nil {
		t.Fatalf("Wait on unlimited chain = %v, %v", waited, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Wait(ctx, 1); err != context.Canceled {
		t.Fatalf("Wait with ended context = %v", err)
	}
}

// TestChainWaitCancel checks that ending the context wakes a blocked Wait at
// once and gives the reserved tokens back.
func TestChainWaitCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bk := newBucket(kib, 64*kib)
		c := chainOf(bk)
		ctx, cancel := context.WithCancel(context.Background())
		if waited, err := c.Wait(ctx, 64*kib); waited != 0 || err != nil {
			t.Fatalf("first Wait = %v, %v", waited, err)
		}
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		start := time.Now()
		waited, err := c.Wait(ctx, 32*kib) // 32 s of tokens
		if err != context.Canceled || time.Since(start) != time.Second || waited != time.Second {
			t.Fatalf("Wait = %v, %v after %v; want canceled after 1s", waited, err, time.Since(start))
		}
		if got := bk.limiter().Tokens(); got != kib {
			t.Errorf("tokens after cancel = %v, want %d (1 s of refill, reservation given back)", got, kib)
		}
		if _, err := c.Wait(ctx, 1); err != context.Canceled {
			t.Errorf("Wait on ended context = %v", err)
		}
		if got := bk.limiter().Tokens(); got != kib {
			t.Errorf("Wait on ended context took tokens: %v left", got)
		}
	})
}

func TestChainAllow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := chainOf(newBucket(64*kib, 64*kib), newBucket(0, 0))
		n := 0
		for c.Allow(1500) {
			n++
		}
		// The burst, and a second's worth ahead of the rate (queueTolerance).
		if want := (64*kib + 64*kib*int(queueTolerance/time.Second)) / 1500; n != want {
			t.Errorf("datagrams allowed from a full 64 KiB bucket = %d, want %d", n, want)
		}
		time.Sleep(2 * time.Second)
		if !c.Allow(64 * kib) {
			t.Error("Allow(burst) refused after the debt was repaid")
		}
		if c.Allow(64*kib + 1) {
			t.Error("Allow(burst+1) allowed")
		}
		if !c.Allow(0) || !chainOf().Allow(1<<20) {
			t.Error("Allow refused nothing or an unlimited chain")
		}
	})
}

// TestChainAllowAtomic checks that a refused datagram takes no tokens from the
// buckets that had enough, whichever side of the chain they are on.
func TestChainAllowAtomic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, appFirst := range []bool{false, true} {
			// 500 B/s: a second datagram would put the app bucket 2 s behind.
			user, app := newBucket(mib, 0), newBucket(500, 2000)
			c := chainOf(user, app)
			if appFirst {
				c = chainOf(app, user)
			}
			if !c.Allow(1500) {
				t.Fatal("first datagram refused")
			}
			if c.Allow(1500) {
				t.Fatal("second datagram allowed past a 2000-byte bucket at 500 B/s")
			}
			if got, want := user.limiter().Tokens(), float64(defaultBurst(mib)-1500); got != want {
				t.Errorf("appFirst=%v: user tokens = %v, want %v", appFirst, got, want)
			}
			if got := app.limiter().Tokens(); got != 500 {
				t.Errorf("appFirst=%v: app tokens = %v, want 500", appFirst, got)
			}
		}
	})
}

package shaping

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// TestCrowdedBucketKeepsEverySessionMoving runs many sessions of one user on one
// bucket, down to 8 kbit/s and up to 1,000 sessions, and checks that every
// session moves bytes in every 5 s window (no session starves while others
// take turns), that together they get the bucket's rate, and that they share it
// evenly once all have joined. Before chunks followed the number of waiting sessions, a 32 KiB chunk
// at 1 kB/s held each session's turn for 32 s.
func TestCrowdedBucketKeepsEverySessionMoving(t *testing.T) {
	tests := []struct {
		rate     configs.Rate
		sessions int
	}{
		{1000, 1},       // 8 kbit/s alone: chunks of at most half a second
		{1000, 20},      // 8 kbit/s shared
		{1000, 200},     // 8 kbit/s, 5 bytes/s each
		{4000, 100},     // 32 kbit/s
		{500_000, 1000}, // 4 Mbit/s, 1,000 sessions
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%dB/s-%d", tc.rate, tc.sessions), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const windows, window = 4, 5 * time.Second
				r := NewRegistry(configs.Shaping{DefaultGroup: "g",
					Groups: map[string]configs.Limit{"g": {Download: tc.rate, Burst: configs.ByteSize(tc.rate / 2)}}})
				moved := crowd(r, tc.sessions, windows, window)
				var total int64
				for i, perWindow := range moved {
					for w, n := range perWindow {
						total += n
						if n == 0 {
							t.Fatalf("session %d moved nothing in window %d of %v (bytes by window %v)", i, w, window, perWindow)
						}
					}
				}
				want := int64(tc.rate)*int64(windows*window/time.Second) + int64(tc.rate/2) // and the burst
				within(t, "bytes of all sessions", total, want, 0.05)
				// The first window is the start: the burst, and sessions joining
				// the queue one after the other. After it they share evenly.
				sessionTotals := make([]int64, len(moved))
				for i, perWindow := range moved {
					for _, n := range perWindow[1:] {
						sessionTotals[i] += n
					}
				}
				if _, cv := meanCV(sessionTotals); tc.sessions > 1 && cv > 0.1 {
					t.Errorf("sessions share unevenly after the first window: CV %.3f", cv)
				}
			})
		})
	}
}

// crowd runs sessions Copy loops of user "u" on r for windows × window and
// returns the bytes each moved in each window.
func crowd(r *Registry, sessions, windows int, window time.Duration) [][]int64 {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(windows)*window)
	defer cancel()
	moved := make([][]int64, sessions)
	var wg sync.WaitGroup
	for i := range sessions {
		moved[i] = make([]int64, windows)
		l := r.Acquire(Who{User: "u"}, Other)
		wg.Go(func() {
			defer l.Release()
			Copy(ctx, io.Discard, endless{}, l.Download(), func(n int, _ time.Duration) {
				if w := int(time.Since(start) / window); w < windows {
					moved[i][w] += int64(n)
				}
			})
		})
	}
	wg.Wait()
	return moved
}

func TestChunkSizeFollowsWaitingSessions(t *testing.T) {
	tests := []struct {
		name    string
		rate    configs.Rate
		waiting int32 // callers already waiting on the bucket
		want    int
	}{
		{"4 Mbit/s, none waiting", 500_000, 0, 32 * kib},
		{"4 Mbit/s, 7 waiting: still a full chunk", 500_000, 6, 32 * kib},
		{"4 Mbit/s, 70 waiting", 500_000, 69, 500_000 / 2 / 70},
		{"4 Mbit/s, 1,000 waiting", 500_000, 999, 250},
		{"8 kbit/s alone: half a second", 1000, 0, 500},
		{"8 kbit/s, 20 waiting", 1000, 19, 25},
		{"8 kbit/s, 1,000 waiting: a byte", 1000, 999, 1},
	}
	for _, tc := range tests {
		bk := newBucket(tc.rate, 0)
		bk.sessions.Store(2)
		bk.waiting.Store(tc.waiting)
		if got := chainOf(bk).ChunkSize(); got != tc.want {
			t.Errorf("%s: ChunkSize() = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestSlowerRateDoesNotInheritDebt: sessions queued on a fast bucket are not held
// back for the old queue's length at the new, slower rate when a reload (or a
// time window) lowers it: within a second every one of them moves again.
func TestSlowerRateDoesNotInheritDebt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const fast, slow = 100 << 20, 32_000 // 100 MiB/s, then 256 kbit/s
		r := NewRegistry(oneGroup(fast))
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		const sessions = 4
		var last [sessions]time.Time
		var wg sync.WaitGroup
		for i := range sessions {
			l := r.Acquire(Who{User: "u"}, Other)
			wg.Go(func() {
				defer l.Release()
				Copy(ctx, io.Discard, endless{}, l.Download(), func(int, time.Duration) { last[i] = time.Now() })
			})
		}
		time.Sleep(time.Second)
		r.Update(oneGroup(slow))
		changed := time.Now()
		wg.Wait()
		for i, at := range last {
			if since := at.Sub(changed); since < time.Second {
				t.Errorf("session %d last moved %v after the rate fell, want it still moving in the last of the 2 s that followed", i, since)
			}
		}
	})
}

// TestDatagramsAndSparseMessagesPassBusyBucket: while bulk sessions keep a
// bucket saturated (their reservations always ahead of its tokens), a call's
// datagrams and small messages still go through at once, and the bucket's
// rate holds for all of them together. Before, Allow needed the tokens now and
// dropped every datagram while the bucket was busy.
func TestDatagramsAndSparseMessagesPassBusyBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 1 << 20
		r := NewRegistry(oneGroup(rate))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var bulk int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 8 {
			l := r.Acquire(Who{User: "u"}, Other)
			wg.Go(func() {
				defer l.Release()
				Copy(ctx, io.Discard, endless{}, l.Download(), func(n int, _ time.Duration) {
					mu.Lock()
					bulk += int64(n)
					mu.Unlock()
				})
			})
		}
		call := r.Acquire(Who{User: "u"}, Other)
		defer call.Release()
		sent, dropped := 0, 0
		for ctx.Err() == nil {
			time.Sleep(20 * time.Millisecond) // 160 kbit/s of 400-byte frames
			if call.Download().Allow(400) {
				sent++
			} else {
				dropped++
			}
		}
		wg.Wait()
		if dropped > 0 {
			t.Errorf("%d of %d datagrams dropped beside bulk sessions", dropped, sent+dropped)
		}
		within(t, "bytes of bulk and datagrams", bulk+int64(sent*400), int64(10*rate+defaultBurst(rate)), 0.05)
	})
}

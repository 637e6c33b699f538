package shaping

import (
	"context"
	"time"

	"golang.org/x/time/rate"
)

// Chain is the ordered set of buckets one direction of a session passes through:
// the user's, the user's for the app class, the app class total and the global
// one. A Chain comes from a [Lease]; it is safe for concurrent use. Buckets whose
// rate is unlimited stay on the chain, so that a reload giving them a rate
// applies to the session, and cost an atomic load until then. The zero Chain has
// no buckets and never holds bytes back.
type Chain struct {
	buckets [maxLevels]*bucket
	n       int
}

func (c *Chain) add(bk *bucket) {
	c.buckets[c.n] = bk
	c.n++
}

// Limited reports whether some bucket on c has a rate now. It costs an atomic
// load per bucket, so a relay can ask before every step.
func (c *Chain) Limited() bool {
	for _, bk := range c.buckets[:c.n] {
		if bk.limiter() != nil {
			return true
		}
	}
	return false
}

// Wait takes n bytes' worth of tokens from every limited bucket on c, waiting
// until the slowest of them can give them, and returns how long it waited; a
// delay of at most minSleep is not slept but carried into the next call. Each
// caller reserves in turn, so concurrent callers are served first come, first
// served. An n larger than a bucket's burst is taken in pieces no larger than the
// smallest burst, one after the other. When ctx ends first, Wait returns at once
// with ctx.Err() and gives back the tokens of the piece it was waiting for; it
// returns ctx.Err() without taking tokens when ctx has already ended.
func (c *Chain) Wait(ctx context.Context, n int) (waited time.Duration, err error) {
	var w waiter
	defer w.stop()
	return c.wait(ctx, n, &w)
}

// minSleep is the shortest wait a chunk sleeps for. A shorter delay is carried as
// debt instead: the reservation already took the tokens, so the next chunk's delay
// includes it and the long-run rate stays exact. Without it a fast shaped session
// sleeps once per chunk, and each sleep is a timer and two context switches; with
// it a session sleeps at most about 200 times a second and runs ahead of its
// bucket by at most 5 ms of traffic.
const minSleep = 5 * time.Millisecond

// wait is Wait sleeping on w's timer, which Copy reuses across chunks.
func (c *Chain) wait(ctx context.Context, n int, w *waiter) (waited time.Duration, err error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.enter()
	defer c.leave()
	for n > 0 {
		piece := min(n, c.minBurst())
		if piece == 0 {
			return waited, nil // nothing on c is limited
		}
		var res [maxLevels]rate.Reservation
		d, ok := c.reserve(piece, &res)
		if !ok {
			continue // a reload shrank a burst after minBurst read it; read again
		}
		if d > minSleep {
			start := time.Now()
			if err := w.sleep(ctx, d); err != nil {
				cancelAll(res[:c.n])
				return waited + time.Since(start), err
			}
			waited += time.Since(start)
		}
		n -= piece
	}
	return waited, nil
}

// reserve reserves n tokens on every limited bucket into res and returns the
// longest delay among them; when a bucket refuses (n above its burst), it cancels
// the reservations it made and reports false.
func (c *Chain) reserve(n int, res *[maxLevels]rate.Reservation) (time.Duration, bool) {
	now := time.Now()
	var longest time.Duration
	for i, bk := range c.buckets[:c.n] {
		lim := bk.limiter()
		if lim == nil {
			continue
		}
		res[i] = *lim.ReserveN(now, n)
		if !res[i].OK() {
			cancelAll(res[:i])
			return 0, false
		}
		d := res[i].DelayFrom(now)
		bk.note(n, d > minSleep)
		longest = max(longest, d)
	}
	return longest, true
}

// cancelAll gives back the tokens of reservations not yet due; zero
// Reservations (buckets skipped) are left alone by CancelAt.
func cancelAll(res []rate.Reservation) {
	now := time.Now()
	for i := range res {
		res[i].CancelAt(now)
	}
}

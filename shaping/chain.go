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
	// turns holds the user's turn on each bucket that several users share (the
	// app class total, the global one) and nil for the user's own buckets; see
	// turn.go.
	turns [maxLevels]*turn
	n     int
}

// add appends bk to c, with the user's turn on it when other users share it.
func (c *Chain) add(bk *bucket, t *turn) {
	c.buckets[c.n] = bk
	c.turns[c.n] = t
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
// delay of at most minSleep is not slept but carried into the next call. On the
// user's own buckets callers reserve in turn, first come, first served; on a
// bucket other users share, the user's callers queue for the user's turn, and
// the users' turns are served in rotation (see turn.go), so that each user
// gets a fair share of it whatever their number of sessions. An n larger than
// a bucket's burst is taken in pieces no larger than the smallest burst, one
// after the other. When ctx ends first, Wait returns at once with ctx.Err()
// and gives back the tokens of the piece it was waiting for; it returns
// ctx.Err() without taking tokens when ctx has already ended.
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
		d, ok, err := c.take(ctx, piece, w)
		waited += d
		if err != nil {
			return waited, err
		}
		if ok { // else a reload shrank a burst after minBurst read it; read again
			n -= piece
		}
	}
	return waited, nil
}

// piece is what take reserved for one piece of a chunk.
type piece struct {
	res    [maxLevels]rate.Reservation
	refill [maxLevels]int // bytes reserved for the user's balance, by level
	held   uint8          // levels whose turn take holds
	drawn  uint8          // levels whose piece comes from the user's balance
	own    time.Duration  // the longest delay on the buckets not drawn from a balance
	shared time.Duration  // the longest delay of a refill
}

// take takes n bytes' worth of tokens from every limited bucket on c and
// waits until they are due, and returns how long it waited. It holds the
// user's turn on each limited shared bucket from before it reserves until that
// bucket's tokens are due, then waits for the user's own buckets without it,
// so that a session held back by its own bucket (a slow app class) does not
// hold up the user's other sessions. ok is false, with nothing taken, when a
// bucket refused n: a reload shrank its burst after minBurst read it.
func (c *Chain) take(ctx context.Context, n int, w *waiter) (waited time.Duration, ok bool, err error) {
	var p piece
	if p.held, waited, err = c.lockTurns(ctx); err != nil {
		return waited, false, err
	}
	now := time.Now()
	if !c.reserve(now, n, &p) {
		c.unlockTurns(p.held)
		return waited, false, nil
	}
	if p.shared > minSleep {
		start := time.Now()
		err := w.sleep(ctx, p.shared)
		waited += time.Since(start)
		if err != nil {
			cancelAll(p.res[:c.n])
			c.unlockTurns(p.held)
			return waited, false, err
		}
	}
	c.settle(n, &p)
	c.unlockTurns(p.held)
	if p.own <= minSleep {
		return waited, true, nil
	}
	if rest := time.Until(now.Add(p.own)); rest > 0 {
		start := time.Now()
		err := w.sleep(ctx, rest)
		waited += time.Since(start)
		if err != nil {
			cancelAll(p.res[:c.n]) // the refills settled are left out (zeroed)
			return waited, false, err
		}
	}
	return waited, true, nil
}

// reserve reserves n tokens at now on every limited bucket of c into p: on a
// shared bucket whose turn p holds, what the user's balance lacks (nothing when
// it has n); on every other one, n. When a bucket refuses (n above its burst),
// it cancels the reservations it made and reports false.
func (c *Chain) reserve(now time.Time, n int, p *piece) bool {
	for i, bk := range c.buckets[:c.n] {
		lim := bk.limiter()
		if lim == nil {
			continue
		}
		take, turned := n, p.held&(1<<i) != 0
		if turned {
			p.drawn |= 1 << i
			if take = c.turns[i].refill(n, bk); take == 0 {
				continue
			}
			p.refill[i] = take
		}
		p.res[i] = *lim.ReserveN(now, take)
		if !p.res[i].OK() {
			cancelAll(p.res[:i])
			return false
		}
		d := p.res[i].DelayFrom(now)
		bk.note(take, d > minSleep)
		if turned {
			p.shared = max(p.shared, d)
		} else {
			p.own = max(p.own, d)
		}
	}
	return true
}

// settle takes n bytes from the user's balance on each shared bucket p drew
// from, after adding what p reserved for it; p's reservations there are left
// out of any later cancel, since the balance now holds them.
func (c *Chain) settle(n int, p *piece) {
	for i := range c.n {
		if p.drawn&(1<<i) != 0 {
			c.turns[i].settle(p.refill[i], n)
			p.res[i] = rate.Reservation{}
		}
	}
}

// cancelAll gives back the tokens of reservations not yet due; zero
// Reservations (buckets skipped) are left alone by CancelAt.
func cancelAll(res []rate.Reservation) {
	now := time.Now()
	for i := range res {
		res[i].CancelAt(now)
	}
}

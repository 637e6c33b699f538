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
// and gives back the tokens of the piece it was waiting for (on a shared
// bucket, to the user's balance); it returns ctx.Err() without taking tokens
// when ctx has already ended.
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
	res   [maxLevels]rate.Reservation // on the buckets taken without a turn
	own   time.Duration               // the longest delay among them
	drawn uint8                       // the levels whose bytes were drawn from the user's balance
	avail time.Time                   // when those bytes are paid for
}

// take takes n bytes' worth of tokens from every limited bucket on c and
// waits until they are due, and returns how long it waited. On the user's own
// buckets it reserves n; on each shared one it draws n from the user's balance
// under the user's turn (see turn.go), one level after the other, holding no
// turn while it waits for the bytes: a session held back by one bucket (its
// user's slow per-app limit, a crowded app total) does not hold up the user's
// sessions on the others. ok is false, with what it took given back, when a
// bucket refused n: a reload shrank its burst after minBurst read it. When ctx
// ends first, the tokens of its reservations not yet due go back to their
// buckets and the bytes it drew back to the user's balances.
func (c *Chain) take(ctx context.Context, n int, w *waiter) (waited time.Duration, ok bool, err error) {
	var p piece
	now := time.Now()
	if !c.reserve(now, n, &p) {
		return 0, false, nil
	}
	for i, t := range c.turns[:c.n] {
		if t == nil || c.buckets[i].limiter() == nil {
			continue
		}
		at, d, ok, err := t.draw(ctx, c.buckets[i], n, now, w)
		waited += d
		if err != nil || !ok {
			p.giveBack(c, n)
			return waited, false, err
		}
		if !at.IsZero() { // else the bucket became unlimited: nothing drawn
			p.drawn |= 1 << i
			if at.After(p.avail) {
				p.avail = at
			}
		}
	}
	until := now.Add(p.own)
	if p.avail.After(until) {
		until = p.avail
	}
	if waited > 0 { // the clock read at the start is stale
		now = time.Now()
	}
	if rest := until.Sub(now); rest > minSleep {
		err := w.sleep(ctx, rest)
		waited += time.Since(now)
		if err != nil {
			p.giveBack(c, n)
			return waited, false, err
		}
	}
	return waited, true, nil
}

// giveBack undoes p when its piece of n bytes will not pass: the tokens of
// its reservations not yet due go back to their buckets, the bytes it drew
// back to the user's balances.
func (p *piece) giveBack(c *Chain, n int) {
	cancelAll(p.res[:c.n])
	for i, t := range c.turns[:c.n] {
		if p.drawn&(1<<i) != 0 {
			t.giveBack(n)
		}
	}
}

// reserve reserves n tokens at now on every limited bucket of c that has no
// turn into p. When a bucket refuses (n above its burst), it cancels the
// reservations it made and reports false.
func (c *Chain) reserve(now time.Time, n int, p *piece) bool {
	for i, bk := range c.buckets[:c.n] {
		lim := bk.limiter()
		if lim == nil || c.turns[i] != nil {
			continue
		}
		p.res[i] = *lim.ReserveN(now, n)
		if !p.res[i].OK() {
			cancelAll(p.res[:i])
			return false
		}
		d := p.res[i].DelayFrom(now)
		bk.note(n, d > minSleep)
		p.own = max(p.own, d)
	}
	return true
}

// cancelAll gives back the tokens of reservations not yet due; zero
// Reservations (buckets skipped) are left alone by CancelAt.
func cancelAll(res []rate.Reservation) {
	now := time.Now()
	for i := range res {
		res[i].CancelAt(now)
	}
}

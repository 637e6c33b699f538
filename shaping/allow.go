package shaping

import (
	"time"

	"golang.org/x/time/rate"
)

// queueTolerance is how far behind a bucket may fall when [Chain.Allow] takes
// tokens without waiting: more than the queue the sessions waiting on a
// saturated bucket keep ahead of it (about fairRound), so that a datagram or a
// small message gets through a bucket that bulk transfers keep busy, and little
// more, so that a flood of them is still held to the bucket's rate.
const queueTolerance = 2 * fairRound

// SparseMessage is the size up to which a TCP chunk that is all a socket holds
// is sent at once through [Chain.Allow] rather than queued behind bulk
// transfers through [Chain.Wait]: a request, a ClientHello, a keystroke or a
// call's signalling. 4 KiB holds a typical HTTP request head.
const SparseMessage = 4 << 10

// Allow takes n tokens from every limited bucket on c at once, without waiting,
// and reports whether it did: it does when no bucket is then more than
// queueTolerance behind (its debt is later sessions' wait, so the long-run rate
// stays exact); otherwise it takes none. A UDP datagram that does not fit is
// dropped, as a full router queue would drop it; a sparse TCP message waits its
// turn instead. Taking ahead of the sessions queued on a busy bucket is what
// keeps calls and interactive sessions alive beside downloads that saturate it:
// with Allow's old rule (tokens now or nothing) every datagram was dropped while
// TCP sessions kept the bucket's tokens reserved.
func (c *Chain) Allow(n int) bool {
	if n <= 0 {
		return true
	}
	now := time.Now()
	var res [maxLevels]rate.Reservation
	for i, bk := range c.buckets[:c.n] {
		lim := bk.limiter()
		if lim == nil {
			continue
		}
		res[i] = *lim.ReserveN(now, n)
		if !res[i].OK() || res[i].DelayFrom(now) > queueTolerance {
			cancelAll(res[:i+1])
			return false
		}
	}
	for _, bk := range c.buckets[:c.n] {
		if bk.limiter() != nil {
			bk.note(n, false)
		}
	}
	return true
}

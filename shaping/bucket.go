package shaping

import (
	"math"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/sockshaper/sockshaper/configs"
)

// defaultBurst returns the burst of a bucket of rate r bytes/s whose limit sets
// none: 50 ms of traffic, at least 64 KiB.
func defaultBurst(r configs.Rate) int {
	b := float64(r) * defaultBurstTime.Seconds()
	return int(min(max(b, minDefaultBurst), maxBurst))
}

// bucket is a token bucket of bytes whose rate and burst a reload may change in
// place. An unlimited bucket has no limiter: chains skip it with one atomic load.
// It never holds a rate.Inf limiter, because x/time/rate computes 0 × Inf = NaN
// tokens when such a limiter is changed twice at the same instant, and a NaN
// bucket never delays again.
type bucket struct {
	lim      atomic.Pointer[rate.Limiter] // nil while unlimited
	burst    atomic.Int64                 // lim's burst, 0 while unlimited
	perSec   atomic.Uint64                // lim's rate (math.Float64bits, bytes/s), read without lim's lock
	sessions atomic.Int32                 // live leases whose chains hold the bucket
	users    atomic.Int32                 // users with such a lease, on a bucket users share (see turn.go)
	waiting  atomic.Int32                 // callers of Chain.Wait holding or awaiting a reservation

	// What the bucket passed since the last cluster report (see share.go).
	passed atomic.Int64 // bytes reserved
	waited atomic.Bool  // a reservation had to wait

	// Set under the Registry's mu (or before the bucket is shared): the rate
	// and burst asked for, and this instance's part of the rate in a cluster
	// (0: all of it, alone or without a cluster).
	rate  configs.Rate
	bsize configs.ByteSize
	share float64
}

// newBucket returns a full bucket of rate r (0: unlimited) and burst b (0: the
// default for r).
func newBucket(r configs.Rate, b configs.ByteSize) *bucket {
	bk := &bucket{}
	bk.set(r, b)
	return bk
}

// set applies rate r and burst b to the bucket (of which this instance takes
// its share, in a cluster). A bucket that becomes limited starts full. A faster
// rate, a slightly slower one or another burst is applied in place, so that the
// reservations already made keep their time and the next ones see the new
// values. A rate below half the old one starts a new, empty limiter instead: the
// old one's debt (the chunks already queued, about fairRound of traffic at the
// old rate) would take far longer at the new rate — the queue of a 100 Mbit/s
// session's 4 MiB chunk is two minutes at 256 kbit/s — and every session on the
// bucket would wait that long for its next byte. Reservations made on the old
// limiter keep their time.
func (bk *bucket) set(r configs.Rate, b configs.ByteSize) {
	bk.rate, bk.bsize = r, b
	bk.apply()
}

// apply sets the limiter to the bucket's share of its rate.
func (bk *bucket) apply() {
	r, b := bk.rate, bk.bsize
	if r > 0 && bk.share > 0 && bk.share < 1 {
		r = max(configs.Rate(float64(r)*bk.share), 1)
	}
	if r <= 0 {
		bk.burst.Store(0)
		bk.perSec.Store(0)
		bk.lim.Store(nil)
		return
	}
	burst := int(min(b, maxBurst))
	if b <= 0 {
		burst = defaultBurst(r)
	}
	switch lim := bk.lim.Load(); {
	case lim == nil:
		bk.lim.Store(rate.NewLimiter(rate.Limit(r), burst))
	case rate.Limit(r) < lim.Limit()/2:
		slower := rate.NewLimiter(rate.Limit(r), burst)
		slower.AllowN(time.Now(), burst)
		bk.lim.Store(slower)
	default:
		lim.SetBurst(burst)
		lim.SetLimit(rate.Limit(r))
	}
	bk.burst.Store(int64(burst))
	bk.perSec.Store(math.Float64bits(float64(r)))
}

// bytesPerSec returns the limiter's rate as last set, without taking the
// limiter's lock as [rate.Limiter.Limit] does: chunk sizes read it for every
// chunk.
func (bk *bucket) bytesPerSec() float64 { return math.Float64frombits(bk.perSec.Load()) }

// limiter returns the bucket's limiter, nil while it is unlimited.
func (bk *bucket) limiter() *rate.Limiter { return bk.lim.Load() }

// note counts n bytes the bucket passed, and whether they had to wait, for the
// next cluster report: an atomic add per chunk, and a store only when a wait
// first happens in a period.
func (bk *bucket) note(n int, waited bool) {
	bk.passed.Add(int64(n))
	if waited && !bk.waited.Load() {
		bk.waited.Store(true)
	}
}

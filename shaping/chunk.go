package shaping

import (
	"math"
	"time"
)

const (
	// MinChunk is the smallest chunk [Copy] moves through a chain, even when a
	// burst is smaller (Wait then splits the chunk), unless so many sessions wait
	// on a bucket that a chunk each would take longer than fairRound: below 1 KiB
	// the syscall and limiter lock per chunk cost more than the pacing gains, and
	// at 8 kbit/s a 1 KiB chunk is already a second of traffic.
	MinChunk = 1 << 10
	// MaxChunk is the largest chunk moved at once. Per-chunk wake-ups and system
	// calls, not bytes, dominate a fast shaped session's CPU, so fast sessions get
	// large chunks: 4 MiB is 40 ms at 100 MiB/s. [Copy] reads a chunk larger than
	// its largest pooled buffer (1 MiB) in several reads.
	MaxChunk = 4 << 20
	// baseChunk is the chunk of every rate below 3.2 MiB/s and the unit of larger
	// ones. Chunks of other sizes (41,943 bytes: 10 ms at 4 MiB/s) measured unfair
	// between sessions of one user: four sessions at 4 MiB/s spread with CV 0.04
	// to 0.15 over 10 s, against 0.01 to 0.02 with 32 KiB chunks.
	baseChunk = 32 << 10
	// chunkTime is how much traffic at the slowest bucket's rate one chunk holds.
	// Measured at 50 MiB/s on one session: 10 ms chunks cost 1.3-1.5 s of CPU per
	// GiB, 20 ms ones 0.94-0.97 s, but 20 ms chunks let 16 sessions of one user at
	// 16 MiB/s drift apart over a second (CV 0.106); fairness wins.
	// Sessions of one user queue in FIFO order for the user's bucket, so 10 ms
	// chunks interleave them finely; and since a chunk's buffer, where there is
	// one, is in use only while bytes move, buffers in use add up to about 10 ms of
	// the proxy's total throughput, whatever the number of sessions. Fixed-size
	// chunks would make fast sessions pay system calls per few KiB or slow ones
	// hold large buffers.
	chunkTime = 10 * time.Millisecond
	// soloChunkTime is the chunk of a session alone on every limited bucket of
	// its chain (a user's only session): it takes turns with no one, so fairness
	// does not bind, and larger chunks mean fewer sleeps and wake-ups. Measured at
	// 50 MiB/s on one session with the spliced relay, interleaved: 10 ms chunks
	// cost 0.96-1.06 s of CPU per GiB, 40 ms ones 0.66-0.76. It stays below the
	// default burst (50 ms), so a chunk is never split.
	soloChunkTime = 40 * time.Millisecond
	// fairRound bounds how long the sessions waiting on one bucket take to get a
	// chunk each: a bucket shared by more sessions than its rate can give a full
	// chunk each per round hands out smaller chunks, down to a byte. Sessions
	// queue first come, first served, so each one waits about one round between
	// chunks however many share the bucket and however slow it is; without the
	// bound, 1,000 sessions on a 4 Mbit/s bucket would each wait a minute for
	// their 32 KiB. A chunk costs the same few system calls whatever its size, so
	// the cost is chunks per second: the number of waiting sessions / fairRound.
	fairRound = 500 * time.Millisecond

	// minDefaultBurst is the floor of the default burst: 64 KiB, so that a default
	// bucket's chunks are never tiny and a user back from idle starts at once.
	minDefaultBurst = 64 << 10
	// defaultBurstTime is how much traffic at the bucket's rate the default burst
	// holds: 50 ms absorbs timer and scheduling latency (a late wake-up does not
	// lose tokens to a full bucket, so the long-run rate stays exact) while a user
	// back from idle exceeds the rate by at most 50 ms worth.
	defaultBurstTime = 50 * time.Millisecond
	// maxBurst keeps bursts of very high rates within int on 32-bit platforms.
	maxBurst = math.MaxInt32

	// maxLevels is the number of buckets on a chain: user, user×app, app total,
	// global.
	maxLevels = 4
)

// minBurst returns the smallest burst of the limited buckets on c, or 0 when
// none is limited.
func (c *Chain) minBurst() int {
	m := int64(0)
	for _, bk := range c.buckets[:c.n] {
		if b := bk.burst.Load(); b > 0 && (m == 0 || b < m) {
			m = b
		}
	}
	return int(m)
}

// ChunkSize returns the most bytes a shaped copy should move at once: chunkTime
// (soloChunkTime when c's session is alone on its limited buckets) of traffic at
// the slowest limited bucket's rate rounded down to a multiple of baseChunk (and
// at least baseChunk), no more than the smallest burst, kept within [MinChunk,
// MaxChunk]; and no more than a fair share of fairRound on any limited bucket
// that others are waiting on, however small that share is (at least one byte).
// MaxChunk when no bucket on c is limited. Chunks no larger than the burst
// are what make sessions of one user share its bucket fairly, and the fair share
// is what keeps every session on a crowded or slow bucket moving. It follows
// reloads and sessions coming and going.
func (c *Chain) ChunkSize() int {
	b := c.minBurst()
	if b == 0 {
		return MaxChunk
	}
	t := chunkTime
	if c.solo() {
		t = soloChunkTime
	}
	return max(min(chunkFor(c.minRate(), b, t), c.fairShare()), 1)
}

// chunkFor returns t's worth of rate r (bytes/s) rounded down to a multiple of
// baseChunk (at least baseChunk), no more than burst b, within [MinChunk,
// MaxChunk].
func chunkFor(r float64, b int, t time.Duration) int {
	byRate := max(int(min(r*t.Seconds(), MaxChunk))&^(baseChunk-1), baseChunk)
	return min(max(min(b, byRate), MinChunk), MaxChunk)
}

// fairShare returns the smallest, over c's limited buckets, of fairRound's worth
// of the bucket's rate divided among the callers waiting on it and this one:
// on a user's own buckets, the user's sessions; on a shared one, the users, and
// the user's part among their sessions (see turn.go). MaxChunk when no bucket
// is limited.
func (c *Chain) fairShare() int {
	share := float64(MaxChunk)
	for i, bk := range c.buckets[:c.n] {
		if bk.limiter() != nil {
			share = min(share, bk.bytesPerSec()*fairRound.Seconds()/c.callers(i))
		}
	}
	return int(share)
}

// callers returns how many parts a fair share of the bucket at level i is
// divided into for this caller: the callers waiting on it and this one; on a
// shared bucket, the users waiting (this one included) times the user's
// sessions waiting (this one included).
func (c *Chain) callers(i int) float64 {
	waiting := c.buckets[i].waiting.Load()
	t := c.turns[i]
	if t == nil {
		return float64(waiting + 1)
	}
	mine := t.waiting.Load()
	if mine == 0 {
		waiting++ // the user is not counted yet
	}
	return float64(max(waiting, 1)) * float64(mine+1)
}

// enter and leave count a caller of Wait on c's buckets, for fairShare: on a
// shared bucket, the bucket counts the users waiting and the turn the user's
// sessions.
func (c *Chain) enter() {
	for i, bk := range c.buckets[:c.n] {
		if t := c.turns[i]; t != nil {
			t.enter(bk)
		} else {
			bk.waiting.Add(1)
		}
	}
}

func (c *Chain) leave() {
	for i, bk := range c.buckets[:c.n] {
		if t := c.turns[i]; t != nil {
			t.leave(bk)
		} else {
			bk.waiting.Add(-1)
		}
	}
}

// solo reports whether no limited bucket on c is held by more than one session.
func (c *Chain) solo() bool {
	for _, bk := range c.buckets[:c.n] {
		if bk.limiter() != nil && bk.sessions.Load() > 1 {
			return false
		}
	}
	return true
}

// minRate returns the smallest rate, in bytes per second, of the limited buckets
// on c; +Inf when none is limited.
func (c *Chain) minRate() float64 {
	m := math.Inf(1)
	for _, bk := range c.buckets[:c.n] {
		if bk.limiter() != nil {
			m = min(m, bk.bytesPerSec())
		}
	}
	return m
}

package usage

import "math"

// Byte grants keep a user within an allowance at any rate. Bytes reach the store
// at the relay's report points (every 256 KiB or 5 s per direction), and a
// crossing cuts or shapes the user's sessions through an event; unshaped
// sessions at GB/s moved 11-28% past a 200 MB allowance before the cut landed.
// So each relay direction holds a grant. Right before a step moves bytes, it
// takes them from the grant: at most the direction's share of what is free,
// which is the allowance less what the store counted and less what the user's
// directions moved or took and have not reported yet, divided among the live
// sessions' directions. The store publishes what is left with each count and
// session; the grants keep the unreported bytes in an atomic counter of the
// entry, taken with a compare-and-swap; the relay reads both at every step
// without a lock and allocates nothing. A used-up grant makes the relay report
// its bytes and renew it. A direction that finds nothing free waits for the
// others' reports, which free bytes (taken and not moved) or take the user over
// the allowance. So the user's directions together move no more than the
// allowance, but for bytes a small read took before it could take them from
// the grant: at most 16 KiB a direction.

// NoLimit is what a grant allows while no allowance limits the user.
const NoLimit int64 = math.MaxInt64

const (
	// directions are a session's, which each hold a grant.
	directions = 2
	// shareFloorPart sets the smallest share (unless less is free) to 1/1024
	// of the allowance divided among the live sessions' directions, so that
	// steps near the end, where shares shrink, still move enough to be worth
	// their system calls and reports: the last 0.1% of an allowance takes a
	// few steps per direction, not thousands.
	shareFloorPart = 1024
	// minShare and maxShareFloor bound the floor: 4 KiB is a step still worth
	// making; 64 KiB is a fair step for one of few sessions.
	minShare      = 4 << 10
	maxShareFloor = 64 << 10
)

// publishLocked publishes what is left for the user's grants: [NoLimit]
// without an allowance or over one that shapes (the shaper holds the user to
// the over rate), 0 over one that refuses, otherwise the bytes left of the
// allowance closest to being used up; and how many directions share it, and
// the floor of a share.
func (e *entry) publishLocked() {
	left, allowance := NoLimit, NoLimit
	switch {
	case !e.limited:
	case e.over && e.quota.OverRate == 0:
		left = 0
	case !e.over:
		left, allowance = e.leftLocked()
	}
	parts := directions * int64(max(e.live, 1))
	e.parts.Store(parts)
	e.floor.Store(min(max(allowance/(shareFloorPart*parts), minShare), maxShareFloor))
	e.left.Store(left)
	if e.live == 0 {
		// No grant is held: the count of their unreported bytes is 0, even
		// after a relay that ended without reporting (a panic).
		e.unreported.Store(0)
	}
}

// leftLocked returns the bytes left of the allowance closest to being used up
// (at least 1: the user is not over), and that allowance; the entry is limited.
func (e *entry) leftLocked() (left, allowance int64) {
	left, allowance = NoLimit, NoLimit
	if d := int64(e.quota.Daily); d > 0 {
		left, allowance = d-e.day[upload]-e.day[download], d
	}
	if m := int64(e.quota.Monthly); m > 0 {
		if l := m - e.month[upload] - e.month[download]; l < left {
			left, allowance = l, m
		}
	}
	return max(left, 1), allowance
}

// Grant is one relay direction's hold on its user's allowance. At the start
// of a step the relay asks [Grant.Left]; when it is 0 it reports its bytes to
// the store and calls [Grant.Renew]. Right before it moves bytes it takes them
// with [Grant.Take], which counts them at once where the user's other
// directions see them, and after the move it settles with [Grant.Settle].
// Get it from [Session.Grant]. The zero Grant, and the Grant of a nil
// *Session, never limit. A Grant belongs to the goroutine moving its
// direction's bytes; its methods allocate nothing and, but for a renewal that
// finds the user refused, take no lock.
type Grant struct {
	e        *entry
	ss       *Session
	moved    int64 // moved since the last renewal, counted in e.unreported
	taken    int64 // taken for the step under way, counted in e.unreported
	reserved bool  // the step under way took its bytes from an allowance
}

// Grant returns a grant for one direction of the session's bytes; nil (no
// store) gives one that never limits.
func (ss *Session) Grant() Grant {
	if ss == nil {
		return Grant{}
	}
	return Grant{e: ss.e, ss: ss}
}

// Left returns how many bytes the direction may move before it must report its
// bytes and call [Grant.Renew]: [NoLimit] while no allowance limits the user,
// 0 when its share is used up, when the user's directions together moved what
// is left (their reports will tell the store), or when the user is over an
// allowance that refuses ([Grant.Refused]). The share is what is free for the
// direction (the allowance less what the store counted and what the user's
// other directions moved or took since their reports) divided among the live
// sessions' directions, at least the floor, at most what is free.
func (g *Grant) Left() int64 {
	if g.e == nil {
		return NoLimit
	}
	n, _ := g.leftAt(g.e.unreported.Load())
	return n
}

// leftAt is Left with the user's unreported bytes read already, and whether an
// allowance limits the user. unreported must be read before what is left: a
// report lowers what is left before its bytes leave the unreported, so that a
// report between the two reads can make free look smaller, never larger.
func (g *Grant) leftAt(unreported int64) (int64, bool) {
	e := g.e
	left := e.left.Load()
	if left == NoLimit || left == 0 {
		return left, left == 0
	}
	mine := g.moved + g.taken
	free := max(left-unreported+mine, 0)
	share := min(max(free/e.parts.Load(), e.floor.Load()), free)
	return max(share-mine, 0), true
}

// Take takes up to want bytes the step is about to move from the grant and
// returns how many it may move: at most [Grant.Left]. They count at once
// toward what the user's other directions see as used, so that a step that
// waits (on a slow peer) cannot let them spend the same bytes; a
// compare-and-swap makes sure no other direction took bytes between the look
// at what is free and the taking. Call [Grant.Settle] when the step has moved
// its bytes.
func (g *Grant) Take(want int64) int64 {
	e := g.e
	if e == nil {
		return want
	}
	for {
		u := e.unreported.Load()
		n, limited := g.leftAt(u)
		n = min(n, want)
		if !limited || n == 0 {
			g.reserved = false
			return n
		}
		if e.unreported.CompareAndSwap(u, u+n) {
			g.taken, g.reserved = n, true
			return n
		}
	}
}

// Settle ends the step under way, which moved n bytes: what it took and did
// not move goes back; more than it took (bytes read before they could be
// taken) counts as moved all the same.
func (g *Grant) Settle(n int64) {
	if !g.reserved {
		return
	}
	if d := n - g.taken; d != 0 {
		g.e.unreported.Add(d)
	}
	g.moved += n
	g.taken, g.reserved = 0, false
}

// Use counts n bytes the direction moved without a step of its own (bytes the
// client sent with its request) as moved under the grant.
func (g *Grant) Use(n int64) {
	if g.e != nil && n > 0 && g.e.left.Load() != NoLimit {
		g.moved += n
		g.e.unreported.Add(n)
	}
}

// Refused reports whether the user is over an allowance that refuses: the
// session must end. A grant used up otherwise is renewed after a report, or,
// when the user's other directions moved what is left and have not reported
// it yet, waited for: their reports decide whether the user is over.
func (g *Grant) Refused() bool { return g.e != nil && g.e.left.Load() == 0 }

// Release gives back what the grant still holds, when its direction ends
// without having reported its last bytes (a panic); after a report and
// renewal it does nothing.
func (g *Grant) Release() {
	if g.e != nil && g.moved+g.taken != 0 {
		g.e.unreported.Add(-(g.moved + g.taken))
		g.moved, g.taken, g.reserved = 0, 0, false
	}
}

// Renew starts the grant anew and returns [Grant.Left]. The caller has reported
// every byte it moved under the grant ([Store.Add], through the recorder), so
// that they count in what is left instead of as unreported. A step under way
// keeps what it took. A user refused is asked about again, in case their
// period ended since.
func (g *Grant) Renew() int64 {
	if g.e == nil {
		return NoLimit
	}
	if g.moved != 0 {
		g.e.unreported.Add(-g.moved)
		g.moved = 0
	}
	if g.e.left.Load() == 0 {
		g.ss.refresh()
	}
	return g.Left()
}

// refresh rolls the session's entry to now under the config in force and
// checks it, as Add does without counting.
func (ss *Session) refresh() {
	s, e := ss.s, ss.e
	c := s.cfg.Load()
	p := periodOf(s.now(), c.loc)
	s.mu.RLock()
	e.mu.Lock()
	s.prepareLocked(e, ss.user, c, p)
	ev, changed := e.checkLocked(ss.user)
	e.mu.Unlock()
	s.mu.RUnlock()
	if changed {
		s.emit(ev)
	}
}

package auth

import (
	"net/netip"
	"sync"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// minPruneAt is the number of throttle entries below which expired ones are left
// in place: pruning walks the whole map. Entries are bounded anyway by how many
// checks the worker pool can run in a window.
const minPruneAt = 10_000

// pair is who a failure is charged to: a client address (an IPv6 /64) and the
// user name it tried (as the verifier names it, see [UserNamer]), or the
// directory entry a name led to (entry set, user the entry's DN, lower-cased), so
// that every spelling that reaches one entry shares one count.
type pair struct {
	addr  netip.Prefix
	user  string
	entry bool
}

// tally is the failures of one key in the current window, which starts at the
// first failure, and the checks running for it now (reserved before they start, so
// that concurrent guesses cannot all pass a check of the count).
type tally struct {
	failures int
	pending  int
	since    time.Time
}

// ticket is what a login holds from the throttle: its pair, and whether it
// reserved a failure in advance (a check it runs). It is settled with exactly
// one of fail, succeed or release.
type ticket struct {
	p        pair
	reserved bool
}

// reservation is reserve's answer.
type reservation int

const (
	reserved reservation = iota // the check may run
	refused                     // the pair's allowance, or the address's
)

// throttle refuses logins from an address, or of a user from an address, that
// failed too often in the current window. Failures are keyed by (address, user)
// with a low allowance, so that one user's mistakes or one guessed account lock
// out nobody else behind a shared address, and by address with a higher
// allowance, so that guessing many users from one address stops too. A pair that
// logged in recently is exempt from the address's allowance (never from its
// own). The zero value is not usable; see newThrottle.
type throttle struct {
	now func() time.Time

	mu       sync.Mutex
	set      configs.AuthThrottle
	pairs    map[pair]*tally
	addrs    map[netip.Prefix]*tally
	verified map[pair]time.Time // last successful login of the pair
	pruneAt  int
}

func newThrottle(set configs.AuthThrottle, now func() time.Time) *throttle {
	return &throttle{now: now, set: set, pairs: map[pair]*tally{}, addrs: map[netip.Prefix]*tally{},
		verified: map[pair]time.Time{}, pruneAt: minPruneAt}
}

// setSettings applies new numbers; the counts so far are kept.
func (t *throttle) setSettings(set configs.AuthThrottle) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.set = set
}

// blocked reports whether p has used up its failures, or p's address has and p
// has not logged in recently. Checks already running do not count: a login that
// needs no new check (the cache, or a check of the same password running now)
// adds no guess.
func (t *throttle) blocked(p pair) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	pt, at := t.current(t.pairs[p], now), t.current(t.addrs[p.addr], now)
	return pt.failures >= t.set.FailuresPerUser ||
		at.failures >= t.set.FailuresPerAddress && !t.recentlyVerified(p, now)
}

// reserve takes one of tk.p's failures in advance for a check about to run, and
// the address's too unless tk.p is an entry (whose login reserved them). On
// reserved, tk is marked so; it ends with exactly one of fail, succeed or release.
func (t *throttle) reserve(tk *ticket) reservation {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	p := tk.p
	pt := t.current(t.pairs[p], now)
	if pt.failures+pt.pending >= t.set.FailuresPerUser {
		return refused
	}
	if !p.entry {
		at := t.current(t.addrs[p.addr], now)
		if at.failures+at.pending >= t.set.FailuresPerAddress && !t.recentlyVerified(p, now) {
			return refused
		}
	}
	t.tallyOf(p).pending++
	if !p.entry {
		t.addrTally(p.addr).pending++
	}
	tk.reserved = true
	return reserved
}

// release ends a ticket that was no failure (the check was not run, could not
// answer, or its client left): the reservation is dropped.
func (t *throttle) release(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle(tk)
}

// fail counts a failed login of tk.p (and of its address, unless tk.p is an
// entry).
func (t *throttle) fail(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle(tk)
	now := t.now()
	tls := []*tally{t.tallyOf(tk.p)}
	if !tk.p.entry {
		tls = append(tls, t.addrTally(tk.p.addr))
	}
	for _, tl := range tls {
		*tl = t.current(tl, now)
		if tl.failures == 0 {
			tl.since = now
		}
		tl.failures++
	}
	t.prune(now)
}

// succeed records that tk.p logged in.
func (t *throttle) succeed(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle(tk)
	if t.set.RememberVerified > 0 && !tk.p.entry {
		t.verified[tk.p] = t.now()
		t.prune(t.now())
	}
}

// settle ends tk's reservation; the caller holds mu.
func (t *throttle) settle(tk ticket) {
	if tk.reserved {
		t.unpend(tk.p)
	}
}

func (t *throttle) unpend(p pair) {
	if tl := t.pairs[p]; tl != nil {
		tl.pending--
		t.dropIfEmpty(tl, func() { delete(t.pairs, p) })
	}
	if p.entry {
		return
	}
	if tl := t.addrs[p.addr]; tl != nil {
		tl.pending--
		t.dropIfEmpty(tl, func() { delete(t.addrs, p.addr) })
	}
}

func (t *throttle) dropIfEmpty(tl *tally, drop func()) {
	if tl.pending <= 0 && t.current(tl, t.now()).failures == 0 {
		drop()
	}
}

// current is tl as of now: its failures forgotten once its window has passed. A
// nil tally is an empty one.
func (t *throttle) current(tl *tally, now time.Time) tally {
	if tl == nil {
		return tally{}
	}
	c := *tl
	if c.failures > 0 && now.Sub(c.since) >= t.set.Window {
		c.failures = 0
	}
	return c
}

func (t *throttle) recentlyVerified(p pair, now time.Time) bool {
	at, ok := t.verified[p]
	return ok && now.Sub(at) < t.set.RememberVerified
}

func (t *throttle) tallyOf(p pair) *tally {
	tl := t.pairs[p]
	if tl == nil {
		tl = &tally{}
		t.pairs[p] = tl
	}
	return tl
}

func (t *throttle) addrTally(a netip.Prefix) *tally {
	tl := t.addrs[a]
	if tl == nil {
		tl = &tally{}
		t.addrs[a] = tl
	}
	return tl
}

// prune drops what has expired once the maps have grown past pruneAt, then moves
// pruneAt to twice what is left, so that a map full of live entries is not walked
// on every failure.
func (t *throttle) prune(now time.Time) {
	if t.size() < t.pruneAt {
		return
	}
	for p, tl := range t.pairs {
		if tl.pending <= 0 && t.current(tl, now).failures == 0 {
			delete(t.pairs, p)
		}
	}
	for a, tl := range t.addrs {
		if tl.pending <= 0 && t.current(tl, now).failures == 0 {
			delete(t.addrs, a)
		}
	}
	for p, at := range t.verified {
		if now.Sub(at) >= t.set.RememberVerified {
			delete(t.verified, p)
		}
	}
	t.pruneAt = max(minPruneAt, 2*t.size())
}

func (t *throttle) size() int {
	return len(t.pairs) + len(t.addrs) + len(t.verified)
}

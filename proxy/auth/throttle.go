package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
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

// ticket is what a login holds from the throttle: its pair, whether it reserved
// a failure in advance (a check it runs), and whether it took a turn from the
// address's over-allowance bucket. It is settled with exactly one of fail,
// succeed or release.
type ticket struct {
	p        pair
	reserved bool
	turn     bool
	pw       uint64 // with turn: the keyed hash of the password (turns.go)
}

// reservation is reserve's answer.
type reservation int

const (
	reserved  reservation = iota // the check may run
	refused                      // the pair's allowance, or the address's with no turns to give
	needsTurn                    // the address is over its allowance: take a turn first
)

// throttle refuses logins from an address, or of a user from an address, that
// failed too often in the current window. Failures are keyed by (address, user)
// with a low allowance, so that one user's mistakes or one guessed account lock
// out nobody else behind a shared address, and by address with a higher
// allowance, so that guessing many users from one address stops too. Over the
// address's allowance, a user with no failures of their own there is still
// checked, one at a time through the address's bucket of turns (bucket.go), and a
// pair that logged in recently is exempt from the address's allowance (never
// from its own). The zero value is not usable; see newThrottle.
type throttle struct {
	now func() time.Time

	mu       sync.Mutex
	set      configs.AuthThrottle
	pairs    map[pair]*tally
	addrs    map[netip.Prefix]*tally
	verified map[pair]time.Time // last successful login of the pair
	turns    map[netip.Prefix]*turns
	pruneAt  int
	key      [32]byte // of passwordKey
}

func newThrottle(set configs.AuthThrottle, now func() time.Time) *throttle {
	t := &throttle{now: now, set: set, pairs: map[pair]*tally{}, addrs: map[netip.Prefix]*tally{},
		verified: map[pair]time.Time{}, turns: map[netip.Prefix]*turns{}, pruneAt: minPruneAt}
	rand.Read(t.key[:]) // never fails: crypto/rand crashes the program instead
	return t
}

// passwordKey is a keyed hash of a password, by which the turns of an address
// over its allowance tell a sprayed password (turns.go) without holding it.
func (t *throttle) passwordKey(password string) uint64 {
	m := hmac.New(sha256.New, t.key[:])
	io.WriteString(m, password)
	return binary.BigEndian.Uint64(m.Sum(nil))
}

// setSettings applies new numbers; the counts so far are kept.
func (t *throttle) setSettings(set configs.AuthThrottle) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.set = set
}

// blocked reports whether p has used up its failures, or p's address has and p
// may not be checked over it (it failed there itself, or no turns are given).
// Checks already running do not count: a login that needs no new check (the
// cache, or a check of the same password running now) adds no guess.
func (t *throttle) blocked(p pair) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	pt, at := t.current(t.pairs[p], now), t.current(t.addrs[p.addr], now)
	return pt.failures >= t.set.FailuresPerUser ||
		at.failures >= t.set.FailuresPerAddress && !t.recentlyVerified(p, now) && !t.mayTurn(pt)
}

// mayTurn reports whether a pair with tally pt may be checked over its address's
// allowance: turns are given, and only to users with no failures of their own
// there, so that a guesser's spent names cannot queue for them.
func (t *throttle) mayTurn(pt tally) bool {
	return t.set.OverAllowanceInterval > 0 && pt.failures == 0
}

// reserve takes one of tk.p's failures in advance for a check about to run, and
// the address's too unless tk.p is an entry (whose login reserved them). Over
// the address's allowance it answers needsTurn unless tk holds a turn. On
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
	if !p.entry && !tk.turn {
		at := t.current(t.addrs[p.addr], now)
		if at.failures+at.pending >= t.set.FailuresPerAddress && !t.recentlyVerified(p, now) {
			if !t.mayTurn(pt) {
				return refused
			}
			return needsTurn
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
// answer, or its client left): the reservation is dropped, the turn given back.
func (t *throttle) release(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle(tk, true)
}

// fail counts a failed login of tk.p (and of its address, unless tk.p is an
// entry); a turn it held is spent (turns.go).
func (t *throttle) fail(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle(tk, false)
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

// succeed records that tk.p logged in; its turn is given back.
func (t *throttle) succeed(tk ticket) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settle(tk, true)
	if t.set.RememberVerified > 0 && !tk.p.entry {
		t.verified[tk.p] = t.now()
		t.prune(t.now())
	}
}

// settle ends tk's reservation and gives its turn back or not; the caller holds mu.
func (t *throttle) settle(tk ticket, giveBack bool) {
	if tk.reserved {
		t.unpend(tk.p)
	}
	switch {
	case !tk.turn:
	case giveBack:
		t.giveBack(tk.p.addr)
	default:
		t.spendTurn(tk.p.addr, tk.pw)
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
	t.pruneTurns(now)
	t.pruneAt = max(minPruneAt, 2*t.size())
}

func (t *throttle) size() int {
	return len(t.pairs) + len(t.addrs) + len(t.verified) + len(t.turns)
}

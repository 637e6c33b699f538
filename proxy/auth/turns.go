package auth

import (
	"context"
	"net/netip"
	"slices"
	"time"
)

// sprayedAfter is how many wrong passwords checked over an address's allowance
// with one password make it "sprayed" there: its logins then wait behind
// everyone else's. Two, since a user who typed their right password under a
// mistyped name fails once with it, while a sprayer tries one password on name
// after name.
const sprayedAfter = 2

// maxSprayed bounds the passwords (keyed hashes) remembered per address: a
// sprayer tries a handful, and beyond these the oldest are forgotten.
const maxSprayed = 256

// turns is the token bucket of checks of one address over its failure allowance
// (auth.throttle.over_allowance_interval and _burst). A login takes a turn before
// its check is queued; a wrong password spends it, while a right one, or a check
// that could not answer, gives it back at once, to the login that has waited
// longest. So the guesser behind a NAT address gets one checked guess per
// interval, and the people logging in there hold a turn only for the time of
// their check: 60 of them at once pass through a burst of 3 in the time of 60
// checks, not in a minute.
//
// Nothing tells a guess from a real login before its check, except that a
// sprayer tries the same password on many names: logins with a password that
// failed sprayedAfter times here wait behind all the others, so a sprayer,
// however many logins it keeps waiting, does not delay the people logging in.
// Any other guesser shares the turns with them, first come first served: it
// spends one a second, and the logins waiting behind it wait about a second.
//
// golang.org/x/time/rate cannot do this: a reservation whose time has come cannot
// be cancelled, so a turn could not be given back.
type turns struct {
	tokens float64
	at     time.Time // when tokens was brought up to date
	// queue holds the logins waiting, by class (0: others, 1: sprayed
	// passwords), first come first served within a class. The first waits on a
	// timer for the next turn to accrue; the others wait to be poked.
	queue [2][]*turnWaiter
	// failed counts wrong passwords checked over the allowance, by keyed hash
	// of the password; order lists its keys, oldest first, to forget beyond
	// maxSprayed.
	failed   map[uint64]int
	order    []uint64
	lastFail time.Time
}

// turnWaiter is one login waiting for a turn.
type turnWaiter struct {
	poke chan struct{} // buffered: a turn was handed over, or it is first now
	pw   uint64        // the keyed hash of its password
	// Guarded by the throttle's mu:
	class   int
	queued  bool
	granted bool // a turn was handed over
}

// takeTurn waits until a has a turn for a login with password key pw and takes
// it. It gives up, and reports false, when budget passes (the gate's wait
// budget: half the handshake timeout), ctx ends, or turns are not given
// (interval 0).
func (t *throttle) takeTurn(ctx context.Context, a netip.Prefix, pw uint64, budget time.Duration) bool {
	w := &turnWaiter{poke: make(chan struct{}, 1), pw: pw}
	wait, ok, queued := t.tryTurn(a, w)
	if ok || !queued {
		return ok
	}
	giveUp := time.NewTimer(budget)
	defer giveUp.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(cmpOr(wait, time.Hour)) // zero: not first; wait to be poked
		select {
		case <-w.poke:
		case <-timer.C:
		case <-giveUp.C:
			return t.leaveQueue(a, w)
		case <-ctx.Done():
			return t.leaveQueue(a, w)
		}
		if wait, ok, queued = t.tryTurn(a, w); ok || !queued {
			return ok || t.leaveQueue(a, w)
		}
	}
}

// tryTurn takes a turn for w if one was handed to it, or if one has accrued and
// no login of its class or a better one waits ahead of it. Otherwise it queues w
// (once) and returns how long until the next turn accrues if w is first (zero:
// until poked). queued is false when turns are not given.
func (t *throttle) tryTurn(a netip.Prefix, w *turnWaiter) (wait time.Duration, ok, queued bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	every := t.set.OverAllowanceInterval
	if every <= 0 || t.set.OverAllowanceBurst < 1 {
		return 0, false, false
	}
	if w.granted {
		return 0, true, true
	}
	b := t.refill(a, t.now())
	if !w.queued && b.failed[w.pw] >= sprayedAfter {
		w.class = 1
	}
	need := t.need(w)
	if h := b.head(); (h == w || h == nil || !w.queued && h.class > w.class) && b.tokens >= need {
		b.tokens--
		b.remove(w)
		return 0, true, true
	}
	if !w.queued {
		w.queued = true
		b.queue[w.class] = append(b.queue[w.class], w)
	}
	if b.head() != w {
		return 0, false, true
	}
	return max(time.Duration((need-b.tokens)*float64(every)), time.Millisecond), false, true
}

// need is how many turns a's bucket must hold for w to take one: one, or for a
// sprayed password a full bucket, so that a sprayer, which keeps logins waiting
// for every turn, only ever takes the one that accrued last: the others stay
// for the people logging in, who then never wait for a turn to accrue. The
// caller holds mu.
func (t *throttle) need(w *turnWaiter) float64 {
	if w.class == 1 {
		return float64(max(t.set.OverAllowanceBurst, 1))
	}
	return 1
}

// leaveQueue takes w out of line when it gives up, and reports whether a turn
// was handed to it meanwhile (then it has it).
func (t *throttle) leaveQueue(a netip.Prefix, w *turnWaiter) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.granted {
		return true
	}
	if b := t.turns[a]; b != nil {
		b.remove(w)
	}
	return false
}

// head returns the login first in line, nil if none waits.
func (b *turns) head() *turnWaiter {
	for _, q := range b.queue {
		if len(q) > 0 {
			return q[0]
		}
	}
	return nil
}

// remove takes w out of line, if it is in it, and pokes the login first in line
// now, which waits on its own timer.
func (b *turns) remove(w *turnWaiter) {
	if !w.queued {
		return
	}
	w.queued = false
	was := b.head()
	q := b.queue[w.class]
	if i := slices.Index(q, w); i >= 0 {
		b.queue[w.class] = slices.Delete(q, i, i+1)
	}
	if h := b.head(); h != nil && h != was {
		h.wake()
	}
}

func (w *turnWaiter) wake() {
	select {
	case w.poke <- struct{}{}:
	default: // already poked
	}
}

// giveBack returns a turn to a's bucket and hands it to the login first in line
// if that may take it; the caller holds mu.
func (t *throttle) giveBack(a netip.Prefix) {
	b := t.refill(a, t.now())
	b.tokens = min(b.tokens+1, float64(max(t.set.OverAllowanceBurst, 1)))
	switch w := b.head(); {
	case w == nil:
	case b.tokens >= t.need(w):
		b.tokens--
		w.granted = true
		b.remove(w)
		w.wake()
	default: // a sprayed password's login: its wait is shorter now
		w.wake()
	}
}

// spendTurn records a wrong password (key pw) checked on a turn of a's; the
// caller holds mu.
func (t *throttle) spendTurn(a netip.Prefix, pw uint64) {
	now := t.now()
	b := t.refill(a, now)
	b.lastFail = now
	if b.failed == nil {
		b.failed = map[uint64]int{}
	}
	if b.failed[pw] == 0 {
		if len(b.order) >= maxSprayed {
			delete(b.failed, b.order[0])
			b.order = slices.Delete(b.order, 0, 1)
		}
		b.order = append(b.order, pw)
	}
	if b.failed[pw]++; b.failed[pw] == sprayedAfter {
		b.demote(pw)
	}
}

// demote moves the logins waiting with a password that has just become sprayed
// behind the others, and pokes the new first in line if that changed.
func (b *turns) demote(pw uint64) {
	was := b.head()
	b.queue[0] = slices.DeleteFunc(b.queue[0], func(w *turnWaiter) bool {
		if w.pw != pw {
			return false
		}
		w.class = 1
		b.queue[1] = append(b.queue[1], w)
		return true
	})
	if h := b.head(); h != nil && h != was {
		h.wake()
	}
}

// refill returns a's bucket brought up to now, made full if a had none; the
// caller holds mu.
func (t *throttle) refill(a netip.Prefix, now time.Time) *turns {
	burst := float64(max(t.set.OverAllowanceBurst, 1))
	b := t.turns[a]
	if b == nil {
		b = &turns{tokens: burst, at: now}
		t.turns[a] = b
	}
	if every := t.set.OverAllowanceInterval; every > 0 && now.After(b.at) {
		b.tokens = min(burst, b.tokens+float64(now.Sub(b.at))/float64(every))
	}
	b.at = now
	return b
}

// pruneTurns drops the buckets that are full again, that nobody waits for and
// whose last wrong password is older than the window; the caller holds mu.
func (t *throttle) pruneTurns(now time.Time) {
	for a := range t.turns {
		b := t.refill(a, now)
		if b.head() == nil && b.tokens >= float64(max(t.set.OverAllowanceBurst, 1)) && now.Sub(b.lastFail) >= t.set.Window {
			delete(t.turns, a)
		}
	}
}

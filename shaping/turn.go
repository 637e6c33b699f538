package shaping

import (
	"context"
	"sync/atomic"
	"time"
)

// A bucket that several users share (an app class's total, the global bucket)
// is shared between users first and then between each user's sessions, as
// CAKE's per-host isolation shares a link: with k users waiting on it, each
// gets about 1/k of it, whatever their numbers of sessions, and a user who needs
// less leaves the rest to the others (max-min fairness).
//
// The bucket's limiter serves reservations first come, first served, so a user
// with 100 sessions waiting, each holding a reservation, would get 100 chunks
// for another user's one. Instead each user has a turn on each shared bucket
// (and direction), and only the session holding it reserves there, so the
// bucket's queue holds at most one reservation per user: a user's next one
// joins the queue after everyone else's, and the users are served in rotation.
// The turn is a FIFO lock, so the user's sessions are served in order too.
//
// Rotation is fair in bytes only if every user's reservation is the same size,
// and a user's sessions take chunks of many sizes (a user with 100 sessions
// moves small ones, so that each session moves every fairRound). So a turn
// reserves a quantum, the same for every user of the bucket, into the user's
// balance, and the user's sessions take their chunks from the balance until it
// runs short. The quantum is the chunk of the bucket's rate, no larger than
// fairRound's worth divided among the users waiting (so that a round of all of
// them is at most fairRound), and no more than the user's waiting sessions
// need. Tokens a user reserved and did not use (at most one quantum, when the
// user stops) are lost to the bucket: its long-run rate stays within it.
//
// A session holds the turn while it reserves and until the shared tokens are
// due, not while it waits for the user's own buckets: a session held back by
// its own per-app limit does not hold up the user's other sessions. Turns are
// taken in chain order (app total, then global), the same for every session,
// so two sessions never wait for each other's turns. Datagrams and sparse
// messages ([Chain.Allow]) take no turn: they pass ahead of the queue within
// queueTolerance, as before.

// turn is one user's turn on one direction of a shared bucket. It lives with
// the user's buckets, so it is evicted with them.
type turn struct {
	// ch holds a value while a session has the turn. Senders blocked on a full
	// channel are woken first in, first out, and a receive hands the slot to
	// the first of them, so the turn cannot be taken out of order.
	ch chan struct{}
	// waiting counts the user's callers of Chain.wait on the bucket; the
	// bucket's waiting counter counts the users with at least one.
	waiting atomic.Int32
	// balance is bytes the user reserved on the bucket and has not passed yet.
	// Only the turn's holder reads or writes it.
	balance int64
	// leases counts the user's live leases on the bucket, under the
	// Registry's mu; the bucket's users counter counts the users with one.
	leases int
}

func newTurn() *turn { return &turn{ch: make(chan struct{}, 1)} }

// turns are one user's turns on the two directions of one shared level.
type turns [2]*turn

func newTurns() turns { return turns{newTurn(), newTurn()} }

// lock takes the turn, in order of arrival, and returns how long it waited for
// it; it gives up with ctx.Err() when ctx ends first.
func (t *turn) lock(ctx context.Context) (time.Duration, error) {
	select {
	case t.ch <- struct{}{}:
		return 0, nil
	default:
	}
	start := time.Now()
	select {
	case t.ch <- struct{}{}:
		return time.Since(start), nil
	case <-ctx.Done():
		return time.Since(start), ctx.Err()
	}
}

func (t *turn) unlock() { <-t.ch }

// hold and drop count a live lease of the user on bk; the Registry's mu is
// held.
func (t *turn) hold(bk *bucket) {
	if t.leases++; t.leases == 1 {
		bk.users.Add(1)
	}
}

func (t *turn) drop(bk *bucket) {
	if t.leases--; t.leases == 0 {
		bk.users.Add(-1)
	}
}

// enter and leave count a caller of Chain.wait of the user on bk.
func (t *turn) enter(bk *bucket) {
	if t.waiting.Add(1) == 1 {
		bk.waiting.Add(1)
	}
}

func (t *turn) leave(bk *bucket) {
	if t.waiting.Add(-1) == 0 {
		bk.waiting.Add(-1)
	}
}

// refill returns how many bytes the turn's holder should reserve on bk so
// that the balance covers a piece of n bytes: nothing when it does already,
// else the bucket's quantum or what the user's waiting sessions need (n each),
// whichever is less, and at least what the balance lacks. What is left over stays in the balance: a refill never counts it, so
// that every user reserves the same quantum per round.
func (t *turn) refill(n int, bk *bucket) int {
	if t.balance >= int64(n) {
		return 0
	}
	need := min(quantum(bk), n*int(max(t.waiting.Load(), 1)))
	return max(n-int(t.balance), need)
}

// settle adds refill bytes to the balance and takes n from it.
func (t *turn) settle(refill, n int) {
	t.balance += int64(refill) - int64(n)
}

// quantum is what one user reserves at a time on the shared bucket bk: the
// chunk of its rate, no more than fairRound's worth divided among the users
// waiting on it, nor than its burst; at least a byte.
func quantum(bk *bucket) int {
	r := bk.bytesPerSec()
	users := float64(max(bk.waiting.Load(), 1))
	burst := int(bk.burst.Load())
	return max(min(chunkFor(r, burst, chunkTime), int(r*fairRound.Seconds()/users), burst), 1)
}

// lockTurns takes the user's turn on every limited shared bucket of c, in
// chain order, and returns the levels it holds and how long it waited. When
// ctx ends first it gives back the turns it took.
func (c *Chain) lockTurns(ctx context.Context) (held uint8, waited time.Duration, err error) {
	for i, t := range c.turns[:c.n] {
		if t == nil || c.buckets[i].limiter() == nil {
			continue
		}
		d, err := t.lock(ctx)
		waited += d
		if err != nil {
			c.unlockTurns(held)
			return 0, waited, err
		}
		held |= 1 << i
	}
	return held, waited, nil
}

// unlockTurns gives back the turns of the levels in held.
func (c *Chain) unlockTurns(held uint8) {
	for i, t := range c.turns[:c.n] {
		if held&(1<<i) != 0 {
			t.unlock()
		}
	}
}

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
// (and direction), a FIFO lock, and a balance of bytes reserved there. A
// session takes its chunk from the balance under the turn. When the balance is
// short, the session holding the turn refills it, but only once the user's last
// refill is due (it waits for that holding the turn): the bucket's queue holds
// at most one refill per user, a user's next refill joins the queue behind
// everyone else's, and the users are served in rotation. The user's sessions
// queue for the turn in order, so they are served in rotation too.
//
// Rotation is fair in bytes only if every user's refill is the same size, and
// a user's sessions take chunks of many sizes (a user with 100 sessions moves
// small ones, so that each session moves every fairRound). So a refill is a
// quantum, the same for every user of the bucket: the chunk of the bucket's
// rate, no larger than fairRound's worth divided among the users waiting (so
// that a round of all of them is at most fairRound), and no more than the
// user's waiting sessions need. Tokens a user reserved and did not use (at
// most one quantum, when the user stops) are lost to the bucket: its long-run
// rate stays within it.
//
// A session takes the turns of a chain's shared buckets one after the other
// (app total, then global), each only while it draws (and, when it refills,
// waits for the previous refill), never two at once and never while it waits
// for the bytes it drew to be paid for: so no two sessions wait for each
// other's turns, a session held back by one bucket (its user's slow per-app
// limit, a crowded app total) does not hold up the user's sessions on the
// others, and the sessions of a user's app classes meet in the same queue for
// the user's turn on the global bucket. Datagrams and sparse messages
// ([Chain.Allow]) take no turn: they pass ahead of the queue within
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
	// balance is bytes the user reserved on the bucket and has not passed yet,
	// and due when the last of them are paid for. Only the turn's holder reads
	// or writes them.
	balance int64
	due     time.Time
	// credit is bytes drawn by sessions that ended before they were paid for,
	// given back without the turn; the next draw adds them to the balance.
	credit atomic.Int64
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

// draw takes n bytes from the user's balance on the shared bucket bk under
// the turn, and returns when they are paid for (the due time of the refill
// they come from) and how long it waited for the turn and the bucket. When
// the balance is short it refills it, but only once the user's last refill is
// due, which it waits for holding the turn: the user has at most one
// reservation queued on the bucket, and the next one queues behind everyone
// else's. A refill is the bucket's quantum or what the user's waiting sessions
// need (n each), whichever is less, and at least what the balance lacks; what
// is left over stays in the balance, so that every user reserves the same
// quantum per round. ok is false, with nothing taken, when the bucket refused
// the refill (a reload shrank its burst); a bucket that became unlimited
// meanwhile gives the bytes at once.
func (t *turn) draw(ctx context.Context, bk *bucket, n int, now time.Time, w *waiter) (at time.Time, waited time.Duration, ok bool, err error) {
	if waited, err = t.lock(ctx); err != nil {
		return at, waited, false, err
	}
	defer t.unlock()
	if t.credit.Load() != 0 {
		t.balance += t.credit.Swap(0)
	}
	if t.balance >= int64(n) {
		t.balance -= int64(n)
		return t.due, waited, true, nil
	}
	if waited > 0 {
		now = time.Now()
	}
	if rest := t.due.Sub(now); rest > minSleep {
		err := w.sleep(ctx, rest)
		start := now
		now = time.Now()
		waited += now.Sub(start)
		if err != nil {
			return at, waited, false, err
		}
	}
	lim := bk.limiter()
	if lim == nil {
		return at, waited, true, nil
	}
	take := max(n-int(t.balance), min(quantum(bk), n*int(max(t.waiting.Load(), 1))))
	r := lim.ReserveN(now, take)
	if !r.OK() {
		return at, waited, false, nil
	}
	d := r.DelayFrom(now)
	bk.note(take, d > minSleep)
	t.balance += int64(take - n)
	t.due = now.Add(d)
	return t.due, waited, true, nil
}

// giveBack returns n bytes drawn from the balance that a session ending will
// not pass: they stay the user's, paid for when they were.
func (t *turn) giveBack(n int) { t.credit.Add(int64(n)) }

// quantum is what one user reserves at a time on the shared bucket bk: the
// chunk of its rate, no more than fairRound's worth divided among the users
// waiting on it, nor than its burst; at least a byte.
func quantum(bk *bucket) int {
	r := bk.bytesPerSec()
	users := float64(max(bk.waiting.Load(), 1))
	burst := int(bk.burst.Load())
	return max(min(chunkFor(r, burst, chunkTime), int(r*fairRound.Seconds()/users), burst), 1)
}

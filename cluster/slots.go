package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
)

// Slots holds limits.max_sessions_per_user across the instances: each session
// an instance admits reserves its slot in Redis ([Slots.Reserve]: the user's
// sessions on every live instance are summed and this instance's count raised
// only within the cap, atomically, by a script), and its close gives it back
// ([Slots.Release], written by a background loop, batched).
//
// The reservations of an instance go to Redis in batches, one batch at a time:
// those that arrive while a batch is on its way make the next one. So a burst
// of sessions, of one user or of a thousand, costs a few round trips, not one
// each, and every reservation asks for exactly one more than the instance
// holds, reservations under way included, whatever its order in the batch.
//
// Each instance keeps its counts in a hash of its own, user → "count:seq",
// where seq orders this instance's changes (microseconds, so that a restarted
// instance's changes come after those of its previous run): a write only
// replaces an older one, so writes that cross on the way keep the latest
// count. Only the hashes of live members count, so a dead instance's slots
// vanish with its liveness; the hash expires slotsTTL after its last write,
// and the whole of it is written again every fullSyncEvery, when this instance
// (re)joins the members, and after an outage.
//
// When Redis is unreachable (or a batch gets no answer within reserveTimeout)
// a session is admitted within this instance's part of the cap: the cap
// divided among the instances last known, rounded up; the whole cap once they
// are forgotten (peerMemory).
type Slots struct {
	node *Node
	kick chan struct{} // a release or a resync to write; holds one

	mu    sync.Mutex
	held  map[string]slotCount // this instance's sessions by user, reservations under way included
	dirty map[string]bool      // users whose count Redis may not have
	full  bool                 // the next write is of every count
	seq   int64                // the last seq handed out
	// pending are the reservations waiting for the next batch; sending says a
	// batch is on its way.
	pending []*reservation
	sending bool
	// flushFailed says the last write of counts failed (logged once).
	flushFailed bool
}

// slotCount is this instance's sessions of one user and the seq of their last
// change.
type slotCount struct {
	n   int
	seq int64
}

// reservation is one session's request for a slot. Its fields are guarded by
// Slots.mu; done is closed once ok and result are set.
type reservation struct {
	user   string
	max    int
	sent   bool // in the batch on its way
	gone   bool // its session's client left: refused whatever Redis says
	ok     bool
	result string // a metrics.ClusterReserved... value
	done   chan struct{}
}

// Timing of the slots. A batch of reservations waits for Redis at most
// reserveTimeout, as long as an exchange: a round trip on a campus network is
// well under a millisecond, and a Redis that takes longer is as good as down
// (the exchange says so within two periods, and then reservations do not wait).
// A hash lives slotsTTL after its last write, and is written whole every
// fullSyncEvery while this instance lives.
const (
	reserveTimeout = Period
	fullSyncEvery  = 30 * time.Second
	slotsTTL       = 4 * fullSyncEvery
	// zeroKeep is how long a count of 0 stays in Redis after its change: long
	// enough that a batch still on its way (older, so it will not overwrite
	// the 0) finds it.
	zeroKeep = 10 * time.Second
	// maxBatch bounds the reservations of one batch (and one script's run).
	maxBatch = 1000
)

func newSlots(n *Node) *Slots {
	return &Slots{node: n, kick: make(chan struct{}, 1), held: map[string]slotCount{}, dirty: map[string]bool{}}
}

// Reserve takes one of user's max slots for a session this instance admits,
// and reports false when the user holds max across the live instances, or
// when ctx ends first (the session's client left). It waits for Redis at most
// about twice reserveTimeout (the batch on its way, then its own), then
// admits within this instance's part of max; while the last exchange failed
// it does not wait at all. It is safe for concurrent use.
func (s *Slots) Reserve(ctx context.Context, user string, max int) bool {
	if ctx.Err() != nil {
		s.node.rec.ClusterReservation(metrics.ClusterReserveRefused)
		return false
	}
	s.mu.Lock()
	if s.node.isDown() {
		s.changeLocked(user, +1)
		ok, result := s.decideLocked(user, max)
		s.mu.Unlock()
		s.node.rec.ClusterReservation(result)
		return ok
	}
	r := &reservation{user: user, max: max, done: make(chan struct{})}
	s.pending = append(s.pending, r)
	lead := !s.sending
	s.sending = true
	s.mu.Unlock()
	// The first reservation sends its own batch, and leaves those that arrived
	// meanwhile to a goroutine: no goroutine for a session alone.
	if lead && s.sendBatch() {
		go s.send()
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		s.abandon(r)
	}
	s.node.rec.ClusterReservation(r.result)
	return r.ok
}

// abandon refuses r, whose client left: taken out of the next batch, or, when
// it is in the batch on its way, given back when that batch answers (within
// reserveTimeout).
func (s *Slots) abandon(r *reservation) {
	s.mu.Lock()
	select {
	case <-r.done: // answered meanwhile
		s.mu.Unlock()
		return
	default:
	}
	if r.sent {
		r.gone = true
		s.mu.Unlock()
		<-r.done
		return
	}
	defer s.mu.Unlock()
	for i, p := range s.pending {
		if p == r {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			break
		}
	}
	r.ok, r.result = false, metrics.ClusterReserveRefused
	close(r.done)
}

// decideLocked admits a session of user, counted already, on this instance's
// part of max, or counts it out again; it returns the metrics result. s.mu is
// held.
func (s *Slots) decideLocked(user string, max int) (ok bool, result string) {
	peers := s.node.peers(time.Now())
	ok, result = s.held[user].n <= (max+peers-1)/peers, metrics.ClusterLocalReserved
	if !ok {
		s.changeLocked(user, -1)
		result = metrics.ClusterLocalRefused
	}
	s.dirty[user] = true // Redis has not heard of this count
	s.wake()
	return ok, result
}

// Release gives back a slot [Slots.Reserve] took. It does not wait for Redis:
// the new count is written by the loop [Node.Run] starts.
func (s *Slots) Release(user string) {
	s.mu.Lock()
	s.changeLocked(user, -1)
	s.dirty[user] = true
	s.mu.Unlock()
	s.wake()
}

// changeLocked counts d more sessions of user here (at least 0) with a new
// seq, and returns the new count. s.mu is held.
func (s *Slots) changeLocked(user string, d int) slotCount {
	c := s.held[user]
	c.n, c.seq = max(c.n+d, 0), s.nextSeqLocked()
	s.held[user] = c
	return c
}

// nextSeqLocked returns a seq after every one handed out, and no earlier than
// now in microseconds (exact in a Lua number). s.mu is held.
func (s *Slots) nextSeqLocked() int64 {
	s.seq = max(s.seq+1, time.Now().UnixMicro())
	return s.seq
}

// resync has every count written again, and the counts Redis holds for this
// instance that it no longer has deleted.
func (s *Slots) resync() {
	s.mu.Lock()
	s.full = true
	s.mu.Unlock()
	s.wake()
}

func (s *Slots) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run writes the counts that changed whenever there are some, and every count
// every fullSyncEvery, until ctx ends. While the last exchange failed it
// writes nothing: the exchange that works again asks for a full write.
func (s *Slots) run(ctx context.Context) {
	t := time.NewTicker(fullSyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-t.C:
			s.resync()
			continue
		}
		if !s.node.isDown() {
			s.flush(ctx)
		}
	}
}

package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
)

// Slots holds limits.max_sessions_per_user across the instances: each session
// an instance admits reserves its slot in Redis ([Slots.Reserve], one script
// and one round trip: the user's sessions on every live instance are summed and
// this instance's count raised only below the cap, atomically), and its close
// gives it back ([Slots.Release], written by a background loop, batched).
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
// When Redis is unreachable (or does not answer within reserveTimeout) a
// session is admitted within this instance's part of the cap: the cap divided
// among the instances last known, rounded up; the whole cap once they are
// forgotten (peerMemory).
type Slots struct {
	node *Node
	kick chan struct{} // a release or a resync to write; holds one

	mu    sync.Mutex
	held  map[string]slotCount // this instance's sessions by user
	dirty map[string]bool      // users whose count Redis may not have
	full  bool                 // the next write is of every count
	seq   int64                // the last seq handed out
	users map[string]*userLock // users with a reservation under way
	// slowUntil is when Redis is asked again after a reservation it did not
	// answer in time; until then, reservations are decided here.
	slowUntil time.Time
	// flushFailed says the last write of counts failed (logged once).
	flushFailed bool
}

// userLock lets one reservation of a user at a time ask Redis, so that each
// asks for exactly one more than this instance holds: concurrent ones would
// each count the others under way, and refuse sessions below the cap.
type userLock struct {
	mu      sync.Mutex
	waiting int // reservations holding or waiting for mu
}

// slotCount is this instance's sessions of one user and the seq of their last
// change.
type slotCount struct {
	n   int
	seq int64
}

// Timing of the slots. A reservation waits for Redis at most reserveTimeout:
// a round trip on a campus network is well under a millisecond, and a client
// waiting longer than this for its session is better served by the local part
// of the cap. A hash lives slotsTTL after its last write, and is written whole
// every fullSyncEvery while this instance lives.
const (
	reserveTimeout = 100 * time.Millisecond
	fullSyncEvery  = 30 * time.Second
	slotsTTL       = 4 * fullSyncEvery
	// zeroKeep is how long a count of 0 stays in Redis after its change: long
	// enough that a reservation still on its way (older, so it will not
	// overwrite the 0) finds it.
	zeroKeep = 10 * time.Second
)

func newSlots(n *Node) *Slots {
	return &Slots{node: n, kick: make(chan struct{}, 1), held: map[string]slotCount{}, dirty: map[string]bool{},
		users: map[string]*userLock{}}
}

// Reserve takes one of user's max slots for a session this instance admits,
// and reports false when the user holds max across the live instances. It
// waits for Redis at most reserveTimeout, and not at all while the last
// exchange failed: then, or on an error, it admits within this instance's part
// of max. It is safe for concurrent use.
func (s *Slots) Reserve(ctx context.Context, user string, max int) bool {
	defer s.lockUser(user)()
	c := s.take(user)
	ok, decided := s.reserve(ctx, user, c, max)
	result := metrics.ClusterReserved
	if !decided {
		peers := s.node.peers(time.Now())
		ok = c.n <= (max+peers-1)/peers
		s.markDirty(user) // Redis has not heard of this count
		result = metrics.ClusterLocalReserved
		if !ok {
			result = metrics.ClusterLocalRefused
		}
	} else if !ok {
		result = metrics.ClusterReserveRefused
	}
	s.node.rec.ClusterReservation(result)
	if !ok {
		s.Release(user)
	}
	return ok
}

// Release gives back a slot [Slots.Reserve] took. It does not wait for Redis:
// the new count is written by the loop [Node.Run] starts.
func (s *Slots) Release(user string) {
	s.mu.Lock()
	c := s.held[user]
	c.n, c.seq = max(c.n-1, 0), s.nextSeqLocked()
	s.held[user] = c
	s.dirty[user] = true
	s.mu.Unlock()
	s.wake()
}

// lockUser waits for the reservations of user under way here, and returns
// what ends this one's turn.
func (s *Slots) lockUser(user string) (unlock func()) {
	s.mu.Lock()
	l := s.users[user]
	if l == nil {
		l = &userLock{}
		s.users[user] = l
	}
	l.waiting++
	s.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		s.mu.Lock()
		if l.waiting--; l.waiting == 0 {
			delete(s.users, user)
		}
		s.mu.Unlock()
	}
}

// take counts one more session of user here and returns the new count.
func (s *Slots) take(user string) slotCount {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.held[user]
	c.n, c.seq = c.n+1, s.nextSeqLocked()
	s.held[user] = c
	return c
}

func (s *Slots) markDirty(user string) {
	s.mu.Lock()
	s.dirty[user] = true
	s.mu.Unlock()
	s.wake()
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

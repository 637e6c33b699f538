package proxy

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
)

// A handshake's stage decides the order of eviction: connections that have sent
// nothing go before those that have started talking, oldest first within a stage. A
// real client sends its greeting with its first packet, so a flood of silent
// connections only ever replaces its own.
const (
	stageSilent  = iota // accepted, no byte received yet
	stageTalking        // sent at least one byte of its handshake
	stages
)

// handshakeSlot is one connection's place in the handshake budget, from accept until
// its request has been read (or it ended, or was evicted).
type handshakeSlot struct {
	key       netip.Prefix
	owner     *session
	stage     int
	all, mine *list.Element
	held      bool
}

// handshakeQueue holds slots by stage, oldest first in each.
type handshakeQueue struct {
	byStage [stages]list.List
	n       int
}

// oldest returns the slot to evict: the oldest of the earliest stage.
func (q *handshakeQueue) oldest() *handshakeSlot {
	for i := range q.byStage {
		if e := q.byStage[i].Front(); e != nil {
			return e.Value.(*handshakeSlot)
		}
	}
	return nil
}

func (q *handshakeQueue) push(s *handshakeSlot) *list.Element {
	q.n++
	return q.byStage[s.stage].PushBack(s)
}

func (q *handshakeQueue) remove(s *handshakeSlot, e *list.Element) {
	q.n--
	q.byStage[s.stage].Remove(e)
}

// handshakeBudget counts connections that have not finished their handshake, in
// total and per client key. When a client (or the whole proxy) is at its cap, a
// new connection takes the place of an unfinished handshake there (see stageSilent
// for which) instead of being refused. Refusing would let a slowloris lock out
// everyone behind its address (a campus NAT, a VPN concentrator) by holding the
// cap with silent connections, for as long as it likes. Evicting costs a real
// client nothing: it finishes its handshake in milliseconds, so it is almost never
// the oldest, while the attacker's connections are cut as soon as newer ones
// arrive and must be reopened again and again.
type handshakeBudget struct {
	mu       sync.Mutex
	all      handshakeQueue
	byClient map[netip.Prefix]*handshakeQueue
	rec      Recorder
}

func (h *handshakeBudget) init(rec Recorder) {
	h.byClient = map[netip.Prefix]*handshakeQueue{}
	h.rec = rec
}

// eviction scopes, for metrics: which cap made room.
const (
	evictedClient = "client"
	evictedGlobal = "global"
)

// admit gives owner a slot under key within b's caps. It returns the session whose
// slot it took, if any, for the caller to close outside the lock; that session's
// own release is then a no-op.
func (h *handshakeBudget) admit(key netip.Prefix, owner *session, b Budgets) (*handshakeSlot, *session) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var victim *handshakeSlot
	mine := h.byClient[key]
	switch {
	case mine != nil && mine.n >= b.MaxHandshakesPerClient:
		victim = mine.oldest()
		h.rec.HandshakeEvicted(evictedClient)
	case h.all.n >= b.MaxHandshakes:
		victim = h.all.oldest()
		h.rec.HandshakeEvicted(evictedGlobal)
	}
	if victim != nil {
		h.remove(victim)
		mine = h.byClient[key] // remove may have dropped the queue
	}
	if mine == nil {
		mine = &handshakeQueue{}
		h.byClient[key] = mine
	}
	s := &handshakeSlot{key: key, owner: owner, held: true}
	s.all, s.mine = h.all.push(s), mine.push(s)
	h.rec.HandshakeStarted()
	if victim == nil {
		return s, nil
	}
	return s, victim.owner
}

// talking moves a silent slot to the talking stage: its client sent a byte.
func (h *handshakeBudget) talking(s *handshakeSlot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.held || s.stage != stageSilent {
		return
	}
	mine := h.byClient[s.key]
	h.all.remove(s, s.all)
	mine.remove(s, s.mine)
	s.stage = stageTalking
	s.all, s.mine = h.all.push(s), mine.push(s)
}

// release gives s back and reports whether it was still held: false when it was
// released already or evicted. It is safe to call more than once.
func (h *handshakeBudget) release(s *handshakeSlot) bool {
	if s == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.held {
		return false
	}
	h.remove(s)
	return true
}

// remove takes a held slot out of both queues; h.mu is held.
func (h *handshakeBudget) remove(s *handshakeSlot) {
	s.held = false
	h.all.remove(s, s.all)
	mine := h.byClient[s.key]
	mine.remove(s, s.mine)
	if mine.n == 0 {
		delete(h.byClient, s.key)
	}
	h.rec.HandshakeEnded()
}

// active returns the number of connections in their handshake.
func (h *handshakeBudget) active() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.all.n
}

// handshakeReader is what the handshake reads the client through: it moves the
// session's slot out of the silent stage when the first bytes arrive.
type handshakeReader struct {
	sess *session
	seen bool
}

func (r *handshakeReader) Read(p []byte) (int, error) {
	n, err := r.sess.conn.Read(p)
	if n > 0 && !r.seen {
		r.seen = true
		r.sess.srv.handshakes.talking(r.sess.hs)
	}
	return n, err
}

// reasonEvicted is the close reason of a connection whose unfinished handshake
// made room for a newer one.
const reasonEvicted = "handshake_evicted"

// evict closes a session whose handshake slot a newer connection took. A reset
// rather than a close: the client (most likely a slowloris) learns at once, and the
// proxy keeps no TIME_WAIT for it.
func (sess *session) evict() {
	sess.evicted.Store(true)
	if tc, ok := sess.conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	sess.abort()
}

// establish moves the session from the handshake budget to the session budget. On
// false it has ended: evicted just before its request was read, or refused with a
// reply because its client or the proxy has no session slot left.
func (sess *session) establish() bool {
	if !sess.srv.handshakes.release(sess.hs) {
		sess.result, sess.reason = resultLimitReached, reasonEvicted
		return false
	}
	ok, code := sess.srv.limits.admitClient(clientKey(sess.client.Addr()), sess.pol.budgets)
	if !ok {
		sess.refuse(code, resultLimitReached)
		return false
	}
	sess.clientAdmitted = true
	return true
}

package proxy

import (
	"bufio"
	"container/list"
	"net"
	"net/netip"
	"sync"

	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// handshakeSlot is one connection's place in the handshake budget, from accept until
// its request has been read and logged in (or it ended, or was evicted), and again
// while an HTTP keep-alive connection waits for its next request.
type handshakeSlot struct {
	key   netip.Prefix
	owner *client
	stage int
	elem  *list.Element // in its client's queue
	held  bool
}

// handshakeBudget counts connections that have not finished their handshake, in
// total and per client key, and makes room when a cap is full by closing an
// unfinished handshake rather than refusing the new connection. Refusing would let
// a slowloris lock out everyone behind its address (a campus NAT, a VPN
// concentrator) by holding the cap with silent connections, for as long as it
// likes. Evicting costs a real client almost nothing: it finishes its handshake in
// milliseconds, so it is rarely the one chosen, while the attacker's connections
// are cut as soon as newer ones arrive and must be reopened again and again.
//
// A connection that has not logged in holds nothing but its slot here: an HTTP
// connection stays in this budget through requests that need no login (the PAC
// file) or are refused one (407), and comes back to it between requests
// (stageIdle), so keep-alive connections can never take session slots from
// users who logged in.
//
// Which one goes: at a client's cap, that client's oldest idle keep-alive
// connection (then its oldest silent handshake, then its oldest talking one). At
// the proxy's cap, the same of the client holding the most slots in the earliest
// stage that has any: a flood comes from fewer addresses than the users it
// competes with, so its addresses always hold the most, and a real user's single
// handshake is never the one cut however fast the flood reconnects.
type handshakeBudget struct {
	mu       sync.Mutex
	n        int
	byClient map[netip.Prefix]*handshakeQueue
	heavy    [stages]heaviest
	rec      tunnel.Recorder
}

func (h *handshakeBudget) init(rec tunnel.Recorder) {
	h.byClient = map[netip.Prefix]*handshakeQueue{}
	h.rec = rec
}

// eviction scopes, for metrics: which cap made room.
const (
	evictedClient = "client"
	evictedGlobal = "global"
)

// admit gives owner a slot under key within b's caps, in stage st. It returns
// the connection whose slot it took, if any, for the caller to evict outside
// the lock; that connection's own release is then a no-op.
func (h *handshakeBudget) admit(key netip.Prefix, owner *client, b Budgets, st int) (*handshakeSlot, *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var victim *handshakeSlot
	switch mine := h.byClient[key]; {
	case mine != nil && mine.n >= b.MaxHandshakesPerClient:
		victim = mine.oldest()
		h.rec.HandshakeEvicted(evictedClient)
	case h.n >= b.MaxHandshakes:
		victim = h.heaviestOldest()
		h.rec.HandshakeEvicted(evictedGlobal)
	}
	if victim != nil {
		h.remove(victim)
	}
	s := &handshakeSlot{key: key, owner: owner, stage: st, held: true}
	h.push(s)
	if victim == nil {
		return s, nil
	}
	return s, victim.owner
}

// heaviestOldest returns the oldest slot of the client with the most slots in the
// earliest stage that has any; h.mu is held and at least one slot exists.
func (h *handshakeBudget) heaviestOldest() *handshakeSlot {
	for st := range h.heavy {
		if key, ok := h.heavy[st].top(); ok {
			return h.byClient[key].byStage[st].Front().Value.(*handshakeSlot)
		}
	}
	return nil
}

// push adds a slot in its stage; h.mu is held.
func (h *handshakeBudget) push(s *handshakeSlot) {
	q := h.byClient[s.key]
	if q == nil {
		q = &handshakeQueue{}
		h.byClient[s.key] = q
	}
	q.push(s)
	h.heavy[s.stage].add(s.key, 1)
	h.n++
	h.rec.HandshakeSlots(stageName(s.stage), 1)
}

// pull takes a slot out of its stage; h.mu is held.
func (h *handshakeBudget) pull(s *handshakeSlot) {
	q := h.byClient[s.key]
	q.remove(s)
	if q.n == 0 {
		delete(h.byClient, s.key)
	}
	h.heavy[s.stage].add(s.key, -1)
	h.n--
	h.rec.HandshakeSlots(stageName(s.stage), -1)
}

// restage moves a held slot to stage st, at the back of that stage's queue,
// and reports whether it was still held: false when it was released already or
// evicted.
func (h *handshakeBudget) restage(s *handshakeSlot, st int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !s.held {
		return false
	}
	if s.stage != st {
		h.pull(s)
		s.stage = st
		h.push(s)
	}
	return true
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

// remove gives back a held slot; h.mu is held.
func (h *handshakeBudget) remove(s *handshakeSlot) {
	s.held = false
	h.pull(s)
}

// active returns the number of connections in their handshake.
func (h *handshakeBudget) active() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// handshakeReader is what the handshake reads the client through: once it
// watches a connection's slot, it moves the slot out of the silent stage when the
// first bytes arrive. A balancer's connection is read through it before its slot
// exists (for the PROXY header); br then holds what the client sent after it.
type handshakeReader struct {
	nc   net.Conn
	c    *client // nil until watch
	seen bool
	br   *bufio.Reader // set when the PROXY header was read through it
}

func (r *handshakeReader) Read(p []byte) (int, error) {
	n, err := r.nc.Read(p)
	if n > 0 && !r.seen && r.c != nil {
		r.seen = true
		r.c.srv.handshakes.restage(r.c.hs, stageTalking)
	}
	return n, err
}

// watch starts moving c's slot on its first bytes; bytes the client sent with its
// PROXY header count at once.
func (r *handshakeReader) watch(c *client) {
	r.c = c
	if r.br != nil && r.br.Buffered() > 0 {
		r.seen = true
		c.srv.handshakes.restage(c.hs, stageTalking)
	}
}

package proxy

import (
	"net/netip"
	"sync"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
)

// client is the server's side of one connection, or of one stream of a
// multiplexed connection (parent set): its slots in the budgets.
type client struct {
	srv     *Server
	conn    *tunnel.Conn
	key     netip.Prefix // what per-client caps count by
	budgets Budgets      // in force at its accept
	hr      *handshakeReader
	parent  *client // the multiplexed connection a stream is of; nil for a connection

	// mu guards what the streams of a multiplexed connection change from
	// their own goroutines; a connection without streams is only changed by
	// the goroutine serving it.
	mu       sync.Mutex
	hs       *handshakeSlot
	admitted bool // holds a session slot of its client
	streams  int  // its streams that hold a session slot
	released bool // the connection ended: its slots are given back for good
}

// establish moves the connection from the handshake budget to the session
// budget; see [tunnel.Conn.Establish]. A connection that holds a session slot
// already keeps it.
func (c *client) establish() tunnel.Outcome {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.admitted {
		return tunnel.Outcome{}
	}
	if !c.srv.handshakes.release(c.hs) {
		return tunnel.Outcome{Refusal: tunnel.Gone, Result: metrics.ResultLimitReached}
	}
	if r := c.srv.limits.admitClient(c.key, c.budgets); r != tunnel.Allowed {
		return tunnel.Outcome{Refusal: r, Result: metrics.ResultLimitReached}
	}
	c.admitted = true
	return tunnel.Outcome{}
}

// idle moves the connection between the budgets as it waits for its next
// request (idle) and as that request's first byte arrives (!idle); see
// [tunnel.ConnHooks.Idle]. An idle connection gives back its session slot, if it
// took one, and holds a handshake slot in the idle stage, the first to be
// evicted: a keep-alive connection holds no session slot between requests,
// whether or not a request on it ever logged in. Its next request goes on in the
// talking stage until it logs in and is established again. A multiplexed
// connection whose streams hold session slots holds no handshake slot.
func (c *client) idle(idle bool) {
	c.mu.Lock()
	victim := c.idleLocked(idle)
	c.mu.Unlock()
	if victim != nil {
		victim.conn.Evict()
	}
}

func (c *client) idleLocked(idle bool) *client {
	if c.released || c.streams > 0 {
		return nil
	}
	if !idle {
		c.srv.handshakes.restage(c.hs, stageTalking)
		return nil
	}
	if c.admitted {
		c.srv.limits.releaseClient(c.key)
		c.admitted = false
	}
	return c.holdHandshakeLocked(stageIdle)
}

// holdHandshakeLocked puts the connection's handshake slot in stage st, taking
// a new one when it gave its own back, and returns the connection that slot
// evicted, if any; c.mu is held.
func (c *client) holdHandshakeLocked(st int) *client {
	if c.srv.handshakes.restage(c.hs, st) {
		return nil
	}
	var victim *client
	c.hs, victim = c.srv.handshakes.admit(c.key, c, c.budgets, st)
	return victim
}

// release gives back the connection's slots: the handshake's, unless it ended,
// and the session's, if it took one.
func (c *client) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	c.srv.handshakes.release(c.hs)
	if c.admitted {
		c.srv.limits.releaseClient(c.key)
		c.admitted = false
	}
}

// stream is [tunnel.ConnHooks.Stream]: st, a stream of the multiplexed
// connection c, is a client of its own, tracked by the server, that takes a
// session slot of c's client when it is established.
func (c *client) stream(st *tunnel.Conn) tunnel.ConnHooks {
	sc := &client{srv: c.srv, conn: st, key: c.key, budgets: c.budgets, parent: c, released: true}
	c.srv.addStream(sc)
	return tunnel.ConnHooks{
		Establish: sc.establishStream,
		Release:   sc.releaseStream,
		Ended:     func() { c.srv.removeClient(sc) },
	}
}

// establishStream takes a session slot for a stream; its connection gives back
// its handshake slot while one of its streams holds a session slot.
func (sc *client) establishStream() tunnel.Outcome {
	if sc.admitted {
		return tunnel.Outcome{}
	}
	if r := sc.srv.limits.admitClient(sc.key, sc.budgets); r != tunnel.Allowed {
		return tunnel.Outcome{Refusal: r, Result: metrics.ResultLimitReached}
	}
	sc.admitted = true
	p := sc.parent
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.streams++; p.streams == 1 && !p.released {
		p.srv.handshakes.release(p.hs)
	}
	return tunnel.Outcome{}
}

// releaseStream gives back a stream's session slot; the connection's last
// stream to hold one takes its handshake slot back (talking: its request is
// still under way).
func (sc *client) releaseStream() {
	if !sc.admitted {
		return
	}
	sc.srv.limits.releaseClient(sc.key)
	sc.admitted = false
	p := sc.parent
	p.mu.Lock()
	var victim *client
	if p.streams--; p.streams == 0 && !p.released {
		victim = p.holdHandshakeLocked(stageTalking)
	}
	p.mu.Unlock()
	if victim != nil {
		victim.conn.Evict()
	}
}

package tunnel

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one client connection from accept to close: the socket, the policy in
// force when it was accepted, its lifetime (a context that ends when the
// connection is cut or closed), what else must close with it (destination
// sockets, relay sockets), and the session it carries now. The server creates it
// with [Core.NewConn] and ends it with [Conn.End]; a front serves it. Its methods
// are safe for concurrent use.
type Conn struct {
	core   *Core
	pol    *Policy
	nc     net.Conn
	peer   netip.AddrPort
	id     uint64
	start  time.Time
	ctx    context.Context
	stop   context.CancelFunc
	log    *slog.Logger
	logh   lazyLog // log's handler
	hooks  ConnHooks
	secure bool // over TLS

	detached atomic.Bool
	evicted  atomic.Bool
	cutBy    atomic.Pointer[string] // why the proxy cut the connection, if it did
	parent   *Conn                  // the multiplexed connection of a stream; nil otherwise

	mu       sync.Mutex
	aborted  bool
	idle     bool // waiting between two requests (HTTP keep-alive)
	draining bool // the server is shutting down
	ended    bool
	closers  []io.Closer
	owner    string // the user of an admitted session, for cuts by user
	owned    bool
	current  *Session
	sessions int    // started so far
	onDrain  func() // a multiplexed connection's goodbye (HTTP/2 GOAWAY)

	// ownerTicket: the owner logged in with a Kerberos ticket, which a
	// users file that stops listing the name does not revoke.
	ownerTicket bool
}

// ConnHooks are the server's parts of a connection's life.
type ConnHooks struct {
	// Establish moves the connection from the handshake budget to the session
	// budget once its request has been read and logged in; see [Conn.Establish].
	Establish func() Outcome
	// Idle hears that the connection waits for another request (true; an HTTP
	// keep-alive connection between two requests) or that the next one has
	// begun (false): the server gives back its session slot while it waits. It
	// runs on the goroutine serving the connection.
	Idle func(idle bool)
	// Release runs once when the connection ends, before its last accounting
	// line: the server gives back its handshake and session slots, so that once
	// a session shows as ended its slots are free for the next connection.
	Release func()
	// Ended runs once after the last accounting line: the server forgets the
	// connection.
	Ended func()
	// Stream returns the hooks of st, a new stream of a multiplexed
	// connection (see [Conn.NewStream]): each stream takes a session slot of
	// the connection's client while it relays, and the connection holds its
	// handshake slot only while none does. The server tracks st as one more
	// connection (drain, cuts by user). Nil: the connection carries no streams.
	Stream func(st *Conn) ConnHooks
}

// NewConn returns the Conn of a client connection accepted from peer, under the
// policy in force now.
func (c *Core) NewConn(nc net.Conn, peer netip.AddrPort, hooks ConnHooks) *Conn {
	conn := &Conn{core: c, pol: c.Policy(), nc: nc, peer: peer, id: c.nextConn.Add(1), start: time.Now(), hooks: hooks}
	_, conn.secure = nc.(*tls.Conn)
	conn.ctx, conn.stop = context.WithCancel(context.Background())
	conn.logh = lazyLog{inner: c.log.Handler(), conn: conn}
	conn.log = slog.New(&conn.logh)
	return conn
}

// Net returns the client's side: its socket, its TLS connection, or its stream
// of a multiplexed connection.
func (conn *Conn) Net() net.Conn { return conn.nc }

// Core returns the core the connection belongs to.
func (conn *Conn) Core() *Core { return conn.core }

// Secure reports whether the client speaks to the proxy over TLS: what it sends,
// passwords included, cannot be read on the way.
func (conn *Conn) Secure() bool { return conn.secure }

// Peer returns the client's address and port (IPv4 clients in IPv4 form).
func (conn *Conn) Peer() netip.AddrPort { return conn.peer }

// ID returns the connection's number, unique in the process.
func (conn *Conn) ID() uint64 { return conn.id }

// Start returns when the connection was accepted.
func (conn *Conn) Start() time.Time { return conn.start }

// Policy returns the policy the connection was accepted under.
func (conn *Conn) Policy() *Policy { return conn.pol }

// Context ends when the connection is cut, aborted or ended.
func (conn *Conn) Context() context.Context { return conn.ctx }

// Log returns the connection's logger, which names it and its client.
func (conn *Conn) Log() *slog.Logger { return conn.log }

// Establish tells the server that the connection's handshake is over (its
// request has been read, and its client logged in where a login is needed): its
// handshake slot is given back and a session slot of its client taken. A
// connection that has not logged in must not call it: until then it holds
// nothing but a handshake slot. Calling it again while the connection holds its
// session slot does nothing. A refused Outcome means the server has no session
// slot for it (LimitReached: its client's cap; ProxyFull: the proxy's) or
// evicted it just before (Gone); the front answers the first two.
func (conn *Conn) Establish() Outcome {
	if conn.hooks.Establish == nil {
		return Outcome{}
	}
	return conn.hooks.Establish()
}

// Evict ends a connection whose unfinished handshake made room for a newer one,
// with a reset: the client (most likely a slowloris) learns at once, and the
// proxy keeps no TIME_WAIT for it.
func (conn *Conn) Evict() {
	conn.evicted.Store(true)
	resetOnClose(conn.nc)
	conn.Abort()
}

// Evicted reports whether the connection was evicted.
func (conn *Conn) Evicted() bool { return conn.evicted.Load() }

// AddCloser registers c to be closed with the connection; it reports false,
// having closed c, when the connection is already aborted.
func (conn *Conn) AddCloser(c io.Closer) bool {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	if conn.aborted {
		c.Close()
		return false
	}
	conn.closers = append(conn.closers, c)
	return true
}

// RemoveCloser forgets c, which its caller closes itself (an HTTP keep-alive
// connection that moves on to another origin closes the socket of the last), so
// that a long connection does not keep every socket it ever used.
func (conn *Conn) RemoveCloser(c io.Closer) {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	for i, x := range conn.closers {
		if x == c {
			conn.closers = append(conn.closers[:i], conn.closers[i+1:]...)
			return
		}
	}
}

// SetIdle tells whether the connection waits between two requests (an HTTP
// keep-alive connection), where the server's drain may close it at once and its
// budgets treat it as the first to go (see [ConnHooks.Idle]): nothing is under
// way. It reports false when the server is draining, in which case the front
// closes the connection instead of waiting for another request.
func (conn *Conn) SetIdle(idle bool) bool {
	conn.mu.Lock()
	conn.idle = idle
	draining := conn.draining
	conn.mu.Unlock()
	if conn.hooks.Idle != nil && !draining {
		conn.hooks.Idle(idle)
	}
	return !draining
}

// Drain tells the connection that the server is shutting down: one that is idle
// between requests closes now, and a front asks [Conn.Draining] before waiting
// for another request. Sessions under way go on.
func (conn *Conn) Drain() {
	conn.mu.Lock()
	conn.draining = true
	idle, onDrain := conn.idle, conn.onDrain
	conn.mu.Unlock()
	if idle {
		conn.Abort()
		return
	}
	if onDrain != nil {
		onDrain()
	}
}

// OnDrain sets what a multiplexed connection does when the server starts to
// drain while streams are under way: tell its client to open no more (HTTP/2
// GOAWAY). The streams go on until they end or the drain's deadline cuts them.
func (conn *Conn) OnDrain(f func()) {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	conn.onDrain = f
}

// NewStream returns the Conn of one stream of the multiplexed connection conn
// (an HTTP/2 stream): nc is the stream, read and written as a socket; it has
// its own lifetime (ended with conn's), closers, cut and sessions, and conn's
// client, policy and logger. Cutting a stream resets it alone (nc's Reset, see
// streamResetter); cutting conn ends them all.
func (conn *Conn) NewStream(nc net.Conn) *Conn {
	st := &Conn{core: conn.core, pol: conn.pol, nc: nc, peer: conn.peer, id: conn.core.nextConn.Add(1),
		start: time.Now(), secure: conn.secure, parent: conn}
	st.ctx, st.stop = context.WithCancel(conn.ctx)
	st.logh = lazyLog{inner: conn.core.log.Handler(), conn: st}
	st.log = slog.New(&st.logh)
	if conn.hooks.Stream != nil {
		st.hooks = conn.hooks.Stream(st)
	}
	return st
}

// Draining reports whether the server is shutting down.
func (conn *Conn) Draining() bool {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	return conn.draining
}

// Abort closes the connection and everything registered with it, from any
// goroutine: closing the sockets wakes every blocked read and write, and the
// context's end wakes a bucket wait.
func (conn *Conn) Abort() {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	conn.aborted = true
	conn.stop()
	closeNow(conn.nc)
	for _, c := range conn.closers {
		c.Close()
	}
}

// Cut ends the connection from outside its flow for reason (shutdown, revoked,
// stalled, error): its sockets are reset rather than closed, so that a client (or
// destination) sees an error and never takes a transfer cut short for a complete
// one. The first reason sticks and names the close of its session.
//
// Every cutter arms the resets before it closes: two cuts may race (a quota
// cuts a user's sessions while their relay finds the allowance used up), and
// the one that loses the reason must not close the sockets gracefully before
// the winner has armed them (the client would see a clean end).
//
// The reason is taken before anything is armed: arming resets an HTTP/2 stream
// at once, and its relay's own cut (an error) must not take the reason first.
func (conn *Conn) Cut(reason string) {
	first := conn.cutBy.CompareAndSwap(nil, &reason)
	conn.mu.Lock()
	if !conn.aborted {
		resetOnClose(conn.nc)
		for _, c := range conn.closers {
			resetOnClose(c)
		}
	}
	conn.mu.Unlock()
	if first {
		conn.core.rec.SessionReset(reason)
	}
	conn.Abort()
}

// cutReason returns why the proxy cut the connection, nil when it did not: a
// stream's own cut, or else its connection's (cutting a connection ends its
// streams, whose relays may see the error before they are cut themselves).
func (conn *Conn) cutReason() *string {
	if conn.parent != nil {
		if r := conn.parent.cutBy.Load(); r != nil {
			return r
		}
	}
	return conn.cutBy.Load()
}

// resetOnClose makes the coming close of a TCP socket, or of a TLS connection
// on one, send a reset (SO_LINGER 0); a stream of a multiplexed connection is
// reset at once, alone (see [streamResetter]).
func resetOnClose(c any) {
	if r, ok := c.(streamResetter); ok {
		r.Reset()
		return
	}
	if tc := tcpSocket(c); tc != nil {
		tc.SetLinger(0)
	}
}

// Owner returns the user of the connection's admitted session, if it has one.
func (conn *Conn) Owner() (string, bool) {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	return conn.owner, conn.owned
}

// PasswordOwner is [Conn.Owner] for a user who logged in with a password (or
// needed no login), whom a users file that stops listing the name revokes; a
// user who showed a Kerberos ticket has none.
func (conn *Conn) PasswordOwner() (string, bool) {
	conn.mu.Lock()
	defer conn.mu.Unlock()
	return conn.owner, conn.owned && !conn.ownerTicket
}

// Detach hands the end of the connection to the relay that called it: the
// goroutine that served the connection returns without ending it.
func (conn *Conn) Detach() { conn.detached.Store(true) }

// Detached reports whether a relay took over the end of the connection.
func (conn *Conn) Detached() bool { return conn.detached.Load() }

// End closes the connection, ends its current session (its accounting line) and
// hands it back to the server. It runs once; later calls do nothing.
func (conn *Conn) End() {
	conn.mu.Lock()
	if conn.ended {
		conn.mu.Unlock()
		return
	}
	conn.ended = true
	s := conn.current
	conn.mu.Unlock()
	conn.Abort()
	if conn.hooks.Release != nil {
		conn.hooks.Release()
	}
	if s != nil {
		s.End()
	}
	if conn.hooks.Ended != nil {
		conn.hooks.Ended()
	}
}

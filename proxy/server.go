// Package proxy is sockshaper's server: the listener and accept loop, the client
// networks, the connection budgets (handshakes, sessions per client address and
// in all), the choice of front by a connection's first byte (0x05: SOCKS5; an
// ASCII letter: HTTP), reloads, and shutdown. What a front does with a request is
// the protocol-free core's (package tunnel); who a client is, package auth's.
package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/socks5"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

// ErrServerClosed is returned by [Server.Serve] after [Server.Shutdown] or
// [Server.Close].
var ErrServerClosed = errors.New("proxy: server closed")

// Resolver looks up a destination name. *net.Resolver implements it.
type Resolver = tunnel.Resolver

// Recorder receives what the server and its sessions do, for metrics.
type Recorder = tunnel.Recorder

// Options are the parts a Server uses that outlive one config.
type Options struct {
	// Logger receives errors and events. Nil discards.
	Logger *slog.Logger
	// Accounting receives one line per session at its close. Nil uses Logger.
	Accounting *slog.Logger
	// Recorder receives metrics. Nil records nothing.
	Recorder Recorder
	// Resolver resolves domain names in requests. Nil uses net.DefaultResolver.
	Resolver Resolver
	// Shaper hands out token buckets. Nil relays every session unshaped.
	Shaper *shaping.Registry
	// FDLimit is the descriptor limit that zero limits are derived from (see
	// [DeriveBudgets]), read once so that every reload derives the same budgets.
	// Zero reads the process's own ([FDLimit]).
	FDLimit int
}

// front serves a connection whose first byte chose it; see socks5.Front.
type front interface {
	Serve(conn *tunnel.Conn, br *bufio.Reader)
}

// Server accepts client connections and hands each to its front. Create it with
// [New]; it is safe for concurrent use.
type Server struct {
	core    *tunnel.Core
	log     *slog.Logger
	rec     Recorder
	fdLimit int
	socks   front

	budgets    atomic.Pointer[Budgets]
	handshakes handshakeBudget
	limits     sessionLimits
	// gate is the login throttle and the password-check workers: they outlive
	// reloads, so a reload neither forgives failures nor drops queued logins.
	gate *auth.Gate

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	clients   map[*client]struct{}
	closing   bool
	idle      chan struct{} // closed when clients drops to zero while closing
	wg        sync.WaitGroup
}

// client is the server's side of one connection: its slots in the budgets.
type client struct {
	srv      *Server
	conn     *tunnel.Conn
	key      netip.Prefix // what per-client caps count by
	budgets  Budgets      // in force at its accept
	hs       *handshakeSlot
	admitted bool // holds a session slot of its client
}

// New returns a Server applying cfg, checking passwords with users; users may be
// nil only when cfg has no users file (no authentication). It starts no goroutine.
func New(cfg *configs.Config, users auth.Verifier, opts Options) *Server {
	s := &Server{
		log:       opts.Logger,
		rec:       opts.Recorder,
		fdLimit:   opts.FDLimit,
		socks:     socks5.Front{},
		listeners: map[net.Listener]struct{}{},
		clients:   map[*client]struct{}{},
		idle:      make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rec == nil {
		s.rec = tunnel.NopRecorder{}
	}
	if s.fdLimit == 0 {
		s.fdLimit = FDLimit()
	}
	s.handshakes.init(s.rec)
	s.limits.init()
	s.gate = auth.NewGate(auth.GateOptions{Throttle: cfg.Auth.Throttle})
	s.core = tunnel.New(s.policyOf(cfg, users), tunnel.Options{Logger: s.log, Accounting: opts.Accounting,
		Recorder: s.rec, Resolver: opts.Resolver, Shaper: opts.Shaper})
	s.Reload(cfg, users)
	return s
}

// policyOf builds the core's policy for cfg and users.
func (s *Server) policyOf(cfg *configs.Config, users auth.Verifier) *tunnel.Policy {
	p := &tunnel.Policy{Config: cfg, Classifier: shaping.NewClassifier(cfg.Apps)}
	if users != nil {
		p.Authn = s.gate.Authenticator(users, cfg.Auth.CacheTTL)
		p.Roster, _ = users.(tunnel.Roster)
	}
	return p
}

// Reload applies a new config and users to new connections; live ones keep the
// policy they started with (their buckets follow the shaper's own Update), except
// that the sessions of users the new users file no longer lists are cut: it
// returns how many. Listen addresses are not changed by a reload. The budgets are
// derived again from the descriptor limit read at [New]. The cache of verified
// logins starts empty; the throttle's counts and the queued logins carry over,
// under the new allowance. Update the shaper first, so that sessions started on
// the new config find their new limits.
func (s *Server) Reload(cfg *configs.Config, users auth.Verifier) int {
	s.gate.SetThrottle(cfg.Auth.Throttle)
	s.gate.SetWaitBudget(cfg.Timeouts.Handshake / 2)
	p := s.policyOf(cfg, users)
	b := DeriveBudgets(cfg.Limits, s.fdLimit)
	s.budgets.Store(&b)
	s.core.SetPolicy(p)
	for _, c := range b.caps() {
		s.rec.Budget(c.name, c.n)
	}
	if p.Roster == nil {
		return 0
	}
	return s.cutClients(func(user string) bool { return !p.Roster.Has(user) }, tunnel.ReasonRevoked)
}

// cutClients cuts the live connections whose sessions belong to users for whom
// match is true, and returns how many. A connection whose login is still under
// way is checked against the policy in force when its session is admitted (see
// tunnel.Session.AdmitUser).
func (s *Server) cutClients(match func(user string) bool, reason string) int {
	s.mu.Lock()
	var victims []*tunnel.Conn
	for c := range s.clients {
		if u, ok := c.conn.Owner(); ok && match(u) {
			victims = append(victims, c.conn)
		}
	}
	s.mu.Unlock()
	for _, conn := range victims {
		conn.Log().Info("session cut", "reason", reason)
		conn.Cut(reason)
	}
	return len(victims)
}

// Budgets returns the connection budgets in force.
func (s *Server) Budgets() Budgets { return *s.budgets.Load() }

// Config returns the config in force.
func (s *Server) Config() *configs.Config { return s.core.Policy().Config }

// AddOwnAddr makes ap an address that no session may reach, whatever
// access.deny_destinations allows: the daemon passes its admin endpoint's
// address once it listens. [Server.Serve] adds its listener's address itself. An
// unspecified address stands for every local address at that port.
func (s *Server) AddOwnAddr(ap netip.AddrPort) { s.core.AddOwnAddr(ap) }

// ActiveSessions returns the number of connections being served, handshakes included.
func (s *Server) ActiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

// ActiveHandshakes returns the number of connections still in their handshake.
func (s *Server) ActiveHandshakes() int { return s.handshakes.active() }

// ListenAndServe listens on the config's listen address and serves.
func (s *Server) ListenAndServe() error {
	ln, err := Listen(context.Background(), s.Config().Listen)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until the server is shut down; it then returns
// [ErrServerClosed]. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	s.core.AddOwnAddr(tunnel.AddrPortOf(ln.Addr()))
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if !isTemporary(err) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors and the like: back off as net/http does
			// rather than spin, and log once per wait.
			backoff = min(max(backoff*2, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		s.admit(conn)
	}
}

// isTemporary reports whether an accept error is worth retrying.
func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary() || tunnel.IsTimeout(err)
}

// admit applies the checks that need no byte from the client, takes a handshake
// slot (evicting an unfinished handshake when a budget is full; see
// handshakeBudget), then starts the connection's goroutine. A refused connection
// is closed at once.
func (s *Server) admit(nc net.Conn) {
	pol := s.core.Policy()
	peer := tunnel.AddrPortOf(nc.RemoteAddr())
	if !tunnel.AllowedClient(pol.Config.Access.ClientPrefixes, peer.Addr()) {
		nc.Close()
		s.rec.SessionRejected(metrics.CommandNone, shaping.Other, metrics.ResultClientDenied)
		s.log.Info("client refused", "client", peer.String(), "reason", metrics.ResultClientDenied)
		return
	}
	c := &client{srv: s, key: clientKey(peer.Addr()), budgets: s.Budgets()}
	// The hooks are set before the connection is visible to Shutdown, which may
	// end it at once.
	c.conn = s.core.NewConn(nc, peer, tunnel.ConnHooks{
		Establish: c.establish,
		Release:   c.release,
		Ended:     func() { s.removeClient(c) },
	})
	if !s.addClient(c) {
		nc.Close()
		return
	}
	var victim *client
	c.hs, victim = s.handshakes.admit(c.key, c, c.budgets)
	if victim != nil {
		victim.conn.Evict()
	}
	go s.serve(c)
}

// serve reads the connection's first byte under the handshake deadline and hands
// the connection to the front it chooses; it ends the connection when the front
// returns, unless a relay took it over.
func (s *Server) serve(c *client) {
	conn := c.conn
	defer func() {
		if !conn.Detached() {
			conn.End()
		}
	}()
	defer s.core.Recover(conn)
	nc := conn.Net()
	nc.SetDeadline(conn.Start().Add(conn.Policy().Config.Timeouts.Handshake))
	br := tunnel.GetReader(&handshakeReader{c: c})
	defer tunnel.PutReader(br)
	if _, err := br.Peek(1); err != nil {
		// Nothing came: a probe, a scan, a slowloris that gave up or was evicted.
		s := conn.NewSession(metrics.FrontNone)
		s.Log().Debug("no request", "err", err)
		if tunnel.IsTimeout(err) {
			s.Reason = tunnel.ReasonTimeout
		}
		return
	}
	s.socks.Serve(conn, br)
}

func (s *Server) track(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[ln] = struct{}{}
	return true
}

func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.listeners, ln)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) addClient(c *client) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.clients[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) removeClient(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, c)
	if s.closing && len(s.clients) == 0 {
		s.closeIdle()
	}
	s.wg.Done()
}

// closeIdle closes s.idle once; s.mu is held.
func (s *Server) closeIdle() {
	select {
	case <-s.idle:
	default:
		close(s.idle)
	}
}

// Shutdown stops accepting, lets connections finish until ctx ends, then cuts
// the rest and waits for their goroutines and for the password checks running.
// It returns ctx's error when connections had to be cut.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	if len(s.clients) == 0 {
		s.closeIdle()
	}
	s.mu.Unlock()
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		err = ctx.Err()
		s.cutAll(tunnel.ReasonShutdown)
	}
	s.wg.Wait()
	s.gate.Close() // password checks that no session waits for any more
	return err
}

// cutAll cuts every live connection for reason.
func (s *Server) cutAll(reason string) {
	s.mu.Lock()
	conns := make([]*tunnel.Conn, 0, len(s.clients))
	for c := range s.clients {
		conns = append(conns, c.conn)
	}
	s.mu.Unlock()
	for _, conn := range conns {
		conn.Cut(reason)
	}
}

// Close stops accepting and closes every connection at once.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

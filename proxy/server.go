// Package proxy owns the SOCKS5 server: the listener and accept loop, session limits,
// the handshake deadline, method negotiation and RFC 1929 authentication (through
// armon/go-socks5's authenticators and request parser), the access policy, the
// CONNECT and UDP ASSOCIATE relays, BIND refusal and per-session accounting.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/shaping"
)

// ErrServerClosed is returned by [Server.Serve] after [Server.Shutdown] or
// [Server.Close].
var ErrServerClosed = errors.New("proxy: server closed")

// Resolver looks up a destination name. *net.Resolver implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

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

// policy is everything a reload replaces, swapped in one atomic store so a session
// sees one consistent config from its handshake to its end.
type policy struct {
	cfg        *configs.Config
	authn      *auth.Authenticator // nil: no authentication
	roster     roster              // the users file's users; nil: no list to check
	classifier *shaping.Classifier
	budgets    Budgets
}

// roster is a verifier that lists its users, as a users file does: a reload cuts
// the sessions of users it no longer lists. A directory does not list its users;
// a user removed there loses access when the verified-login cache forgets them.
type roster interface {
	Has(user string) bool
}

// Server is a SOCKS5 server. Create it with [New]; it is safe for concurrent use.
type Server struct {
	log      *slog.Logger
	acct     *slog.Logger
	rec      Recorder
	resolver Resolver
	shaper   *shaping.Registry

	fdLimit int

	policy     atomic.Pointer[policy]
	own        ownAddrs // listeners no session may reach
	handshakes handshakeBudget
	limits     sessionLimits
	// gate is the login throttle and the password-check workers: they outlive
	// reloads, so a reload neither forgives failures nor drops queued logins.
	gate   *auth.Gate
	nextID atomic.Uint64
	// pipeWarned is when pipeFailed last logged, in Unix nanoseconds.
	pipeWarned atomic.Int64
	// pipes is where relays take splice pipes; nil: the shared pool. Tests set
	// it to make pipes fail, as they do when the process is out of descriptors.
	pipes func() (*pipe, error)

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	idle      chan struct{} // closed when sessions drops to zero while closing
	wg        sync.WaitGroup
}

// New returns a Server applying cfg, checking passwords with users; users may be
// nil only when cfg has no users file (no authentication). It starts no goroutine.
func New(cfg *configs.Config, users auth.Verifier, opts Options) *Server {
	s := &Server{
		log:       opts.Logger,
		rec:       opts.Recorder,
		resolver:  opts.Resolver,
		shaper:    opts.Shaper,
		fdLimit:   opts.FDLimit,
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
		idle:      make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.acct = opts.Accounting
	if s.acct == nil {
		s.acct = s.log
	}
	if s.rec == nil {
		s.rec = nopRecorder{}
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if s.fdLimit == 0 {
		s.fdLimit = FDLimit()
	}
	s.handshakes.init(s.rec)
	s.limits.init()
	s.gate = auth.NewGate(auth.GateOptions{Throttle: cfg.Auth.Throttle})
	s.Reload(cfg, users)
	return s
}

// Reload applies a new config and users to new sessions; live sessions keep the
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
	p := &policy{cfg: cfg, classifier: shaping.NewClassifier(cfg.Apps), budgets: DeriveBudgets(cfg.Limits, s.fdLimit)}
	if users != nil {
		p.authn = s.gate.Authenticator(users, cfg.Auth.CacheTTL)
		p.roster, _ = users.(roster)
	}
	s.policy.Store(p)
	for _, c := range p.budgets.caps() {
		s.rec.Budget(c.name, c.n)
	}
	if p.roster == nil {
		return 0
	}
	return s.cutSessions(func(user string) bool { return !p.roster.Has(user) }, reasonRevoked)
}

// cutSessions cuts the live sessions of users for whom match is true, and
// returns how many. A session whose login is still under way is checked against
// the policy in force when it is admitted (see session.admitUser).
func (s *Server) cutSessions(match func(user string) bool, reason string) int {
	s.mu.Lock()
	var victims []*session
	for sess := range s.sessions {
		if u, ok := sess.owner(); ok && match(u) {
			victims = append(victims, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range victims {
		sess.log.Info("session cut", "reason", reason)
		sess.cut(reason)
	}
	return len(victims)
}

// Budgets returns the connection budgets in force.
func (s *Server) Budgets() Budgets { return s.policy.Load().budgets }

// Config returns the config in force.
func (s *Server) Config() *configs.Config { return s.policy.Load().cfg }

// ActiveSessions returns the number of connections being served, handshakes included.
func (s *Server) ActiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
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
	s.own.add(addrPortOf(ln.Addr()))
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
	return errors.As(err, &ne) && ne.Temporary() || isTimeout(err)
}

// admit applies the checks that need no byte from the client, takes a handshake
// slot (closing an unfinished handshake when a budget is full; see
// handshakeBudget), then starts the session's goroutine. A refused connection is
// closed at once.
func (s *Server) admit(conn net.Conn) {
	p := s.policy.Load()
	client := addrPortOf(conn.RemoteAddr())
	if !allowedClient(p.cfg.Access.ClientPrefixes, client.Addr()) {
		conn.Close()
		s.rec.SessionRejected(commandNone, shaping.Other, resultClientDenied)
		s.log.Info("client refused", "client", client.String(), "reason", resultClientDenied)
		return
	}
	sess := &session{srv: s, pol: p, conn: conn, client: client, id: s.nextID.Add(1), start: time.Now()}
	// Before the session is visible to Shutdown, which may abort it at once.
	sess.ctx, sess.cancel = context.WithCancel(context.Background())
	if !s.addSession(sess) {
		conn.Close()
		return
	}
	var victim *session
	sess.hs, victim = s.handshakes.admit(clientKey(client.Addr()), sess, p.budgets)
	if victim != nil {
		victim.evict()
	}
	go sess.serve()
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

func (s *Server) addSession(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) removeSession(sess *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, sess)
	if s.closing && len(s.sessions) == 0 {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
	s.wg.Done()
}

// Shutdown stops accepting, lets sessions finish until ctx ends, then closes the
// rest and waits for their goroutines and for the password checks running. It returns ctx's error when sessions had to
// be closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	if len(s.sessions) == 0 {
		select {
		case <-s.idle:
		default:
			close(s.idle)
		}
	}
	s.mu.Unlock()
	var err error
	select {
	case <-s.idle:
	case <-ctx.Done():
		err = ctx.Err()
		s.closeSessions()
	}
	s.wg.Wait()
	s.gate.Close() // password checks that no session waits for any more
	return err
}

// Close stops accepting and closes every session at once.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func (s *Server) closeSessions() {
	s.mu.Lock()
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.cut(reasonShutdown)
	}
}

// pipeLogEvery spaces the warnings about splice pipes that could not be made.
const pipeLogEvery = time.Minute

// pipeFailed hears that a relay could not make a splice pipe (out of
// descriptors) and copied through a buffer instead; it warns at most once per
// pipeLogEvery.
func (s *Server) pipeFailed(err error) {
	now := time.Now().UnixNano()
	last := s.pipeWarned.Load()
	if now-last < int64(pipeLogEvery) || !s.pipeWarned.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("splice pipe unavailable; relaying through buffers", "err", err)
}

// recoverSession keeps one session's bug from taking the daemon down.
func (s *Server) recoverSession(sess *session) {
	if r := recover(); r != nil {
		s.log.Error("session panic", "id", sess.id, "panic", r, "stack", string(debug.Stack()))
		sess.abort()
	}
}

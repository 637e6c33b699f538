// Package proxy is sockshaper's server: the listener and accept loop, the client
// networks, the connection budgets (handshakes, sessions per client address and
// in all), the choice of front by a connection's first byte (0x05: SOCKS5; an
// ASCII letter: HTTP), reloads, and shutdown. What a front does with a request is
// the protocol-free core's (package tunnel); who a client is, package auth's.
package proxy

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/sockshaper/sockshaper/configs"
	"github.com/sockshaper/sockshaper/proxy/auth"
	"github.com/sockshaper/sockshaper/proxy/tunnel"
	"github.com/sockshaper/sockshaper/shaping"
)

// ErrServerClosed is returned by [Server.Serve] after [Server.Shutdown] or
// [Server.Close].
var ErrServerClosed = errors.New("proxy: server closed")

// errNoTLSConfig is ServeTLS's error when no TLS configuration was set.
var errNoTLSConfig = errors.New("proxy: ServeTLS without SetTLSConfig")

// Resolver looks up a destination name. *net.Resolver implements it.
type Resolver = tunnel.Resolver

// Recorder receives what the server and its sessions do, for metrics.
type Recorder = tunnel.Recorder

// Options are the parts a Server uses that outlive one config: the core's
// (logger, accounting, recorder, resolver, shaper, usage store), which the server
// logs and records with too, and its own.
type Options struct {
	tunnel.Options
	// FDLimit is the descriptor limit that zero limits are derived from (see
	// [DeriveBudgets]), read once so that every reload derives the same budgets.
	// Zero reads the process's own ([FDLimit]).
	FDLimit int
}

// Server accepts client connections and hands each to its front. Create it with
// [New]; it is safe for concurrent use.
type Server struct {
	core    *tunnel.Core
	log     *slog.Logger
	rec     Recorder
	fdLimit int
	fronts  listenerFronts

	budgets    atomic.Pointer[Budgets]
	tlsConfig  atomic.Pointer[tls.Config] // of the HTTPS listener; nil without one
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

// New returns a Server applying cfg, checking passwords with users; users may be
// nil only when cfg has no users file (no authentication). It starts no goroutine.
func New(cfg *configs.Config, users auth.Verifier, opts Options) *Server {
	s := &Server{
		log:       opts.Logger,
		rec:       opts.Recorder,
		fdLimit:   opts.FDLimit,
		fronts:    newListenerFronts(),
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
	core := opts.Options
	core.Logger, core.Recorder = s.log, s.rec
	s.core = tunnel.New(s.policyOf(cfg, users), core)
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
	return s.cutClients((*tunnel.Conn).PasswordOwner, func(user string) bool { return !p.Roster.Has(user) }, tunnel.ReasonRevoked)
}

// cutClients cuts the live connections whose sessions belong to users for whom
// match is true, by owner (the user of a connection's admitted session), and
// returns how many. A connection whose login is still under way is checked
// against the policy in force when its session is admitted (see
// tunnel.Session.AdmitUser).
func (s *Server) cutClients(owner func(*tunnel.Conn) (string, bool), match func(user string) bool, reason string) int {
	s.mu.Lock()
	var victims []*tunnel.Conn
	for c := range s.clients {
		if u, ok := owner(c.conn); ok && match(u) {
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

// UserSessions returns this instance's sessions per user (see
// [tunnel.Core.UserSessions]).
func (s *Server) UserSessions() map[string]int { return s.core.UserSessions() }

// SetPeerSessions tells the server the other instances' sessions per user, for
// max_sessions_per_user across a cluster.
func (s *Server) SetPeerSessions(peers map[string]int) { s.core.SetPeerSessions(peers) }

// CutUser cuts the live connections of user for reason (their quota refuses
// them now, say) and returns how many.
func (s *Server) CutUser(user, reason string) int {
	return s.cutClients((*tunnel.Conn).Owner, func(u string) bool { return u == user }, reason)
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

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
}

// policy is everything a reload replaces, swapped in one atomic store so a session
// sees one consistent config from its handshake to its end.
type policy struct {
	cfg        *configs.Config
	creds      *Credentials // nil: no authentication
	classifier *shaping.Classifier
}

// Server is a SOCKS5 server. Create it with [New]; it is safe for concurrent use.
type Server struct {
	log      *slog.Logger
	acct     *slog.Logger
	rec      Recorder
	resolver Resolver
	shaper   *shaping.Registry

	policy   atomic.Pointer[policy]
	own      ownAddrs // listeners no session may reach
	limits   sessionLimits
	throttle authThrottle
	nextID   atomic.Uint64

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	idle      chan struct{} // closed when sessions drops to zero while closing
	wg        sync.WaitGroup
}

// New returns a Server applying cfg; creds may be nil only when cfg has no users
// file. It starts no goroutine.
func New(cfg *configs.Config, creds *Credentials, opts Options) *Server {
	s := &Server{
		log:       opts.Logger,
		rec:       opts.Recorder,
		resolver:  opts.Resolver,
		shaper:    opts.Shaper,
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
	s.limits.init()
	s.throttle.init()
	s.Reload(cfg, creds)
	return s
}

// Reload applies a new config and users to new sessions; live sessions keep the
// policy they started with (their buckets follow the shaper's own Update). Listen
// addresses are not changed by a reload.
func (s *Server) Reload(cfg *configs.Config, creds *Credentials) {
	s.policy.Store(&policy{cfg: cfg, creds: creds, classifier: shaping.NewClassifier(cfg.Apps)})
}

// Config returns the config in force.
func (s *Server) Config() *configs.Config { return s.policy.Load().cfg }

// ActiveSessions returns the number of connections being served, handshakes included.
func (s *Server) ActiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

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

// admit applies the checks that need no byte from the client, then starts the
// session's goroutine. A refused connection is closed at once.
func (s *Server) admit(conn net.Conn) {
	p := s.policy.Load()
	client := addrPortOf(conn.RemoteAddr())
	if !allowedClient(p.cfg.Access.ClientPrefixes, client.Addr()) {
		conn.Close()
		s.rec.SessionRejected(commandNone, shaping.Other, resultClientDenied)
		s.log.Info("client refused", "client", client.String(), "reason", resultClientDenied)
		return
	}
	if !s.limits.admitClient(client.Addr(), p.cfg.Limits) {
		conn.Close()
		s.rec.SessionRejected(commandNone, shaping.Other, resultLimitReached)
		return
	}
	sess := &session{srv: s, pol: p, conn: conn, client: client, id: s.nextID.Add(1), start: time.Now()}
	// Before the session is visible to Shutdown, which may abort it at once.
	sess.ctx, sess.cancel = context.WithCancel(context.Background())
	if !s.addSession(sess) {
		s.limits.releaseClient(client.Addr())
		conn.Close()
		return
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
// rest and waits for their goroutines. It returns ctx's error when sessions had to
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
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.shutdown()
	}
}

// recoverSession keeps one session's bug from taking the daemon down.
func (s *Server) recoverSession(sess *session) {
	if r := recover(); r != nil {
		s.log.Error("session panic", "id", sess.id, "panic", r, "stack", string(debug.Stack()))
		sess.abort()
	}
}

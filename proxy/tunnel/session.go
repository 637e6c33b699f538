package tunnel

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
	"github.com/sockshaper/sockshaper/usage"
)

// Record is what a session's accounting line says besides its counters. The
// front fills in who and what (Front, Command, User, Requested); the core fills
// in where and as what (Dialled, App) and, with the front, how it ended (Result,
// Reason). Its fields belong to the goroutine serving the session.
type Record struct {
	Front     string // the protocol: socks5 or http
	Command   string // a metrics command label value
	User      string // as logged in, or as tried when the login failed
	Requested string // the destination as the client gave it
	Dialled   string // the address dialled (a UDP association's first peer)
	App       string // the app class
	Result    string // a metrics result label value
	Reason    string // the close reason; Result when empty
}

// Session is one request on a connection, from its reading to its accounting
// line: a SOCKS5 connection carries one, an HTTP keep-alive connection one per
// request. Its counters are safe for concurrent use; its Record belongs to the
// goroutine serving it, then to the relay goroutine that finishes last.
type Session struct {
	Record
	conn  *Conn
	core  *Core
	id    uint64
	start time.Time
	log   *slog.Logger

	opened       bool
	userAdmitted bool
	quota        *usage.Session // the user's usage while admitted; nil without a store
	lease        sessionLease   // taken by Copy; the relay holds its own

	up, down                   atomic.Int64 // bytes
	throttledUp, throttledDown atomic.Int64 // nanoseconds
	lastActivity               atomic.Int64 // unix nanoseconds
	tokenWaits                 atomic.Int32 // directions waiting for tokens now
	endOnce                    sync.Once
}

// NewSession starts the connection's next session, spoken by front. The
// connection's first session starts at its accept, so that its handshake is
// part of it; later ones (HTTP keep-alive) start with their request.
func (conn *Conn) NewSession(front string) *Session {
	s := &Session{conn: conn, core: conn.core, id: conn.core.nextSession.Add(1), start: time.Now(), log: conn.log}
	s.Front, s.Command, s.App, s.Result = front, metrics.CommandNone, shaping.Other, metrics.ResultProtocolError
	conn.mu.Lock()
	if conn.sessions == 0 {
		s.start = conn.start
	}
	conn.sessions++
	conn.current = s
	conn.mu.Unlock()
	s.touch()
	return s
}

// Conn returns the connection the session is on.
func (s *Session) Conn() *Conn { return s.conn }

// Core returns the core the session belongs to.
func (s *Session) Core() *Core { return s.core }

// Context ends when the session's connection ends.
func (s *Session) Context() context.Context { return s.conn.ctx }

// Log returns the session's logger.
func (s *Session) Log() *slog.Logger { return s.log }

// Start returns when the session started.
func (s *Session) Start() time.Time { return s.start }

// SetUser records who the session is for, in the accounting line and its log.
func (s *Session) SetUser(user string) {
	s.User = user
	s.log = s.log.With("user", user)
}

// Fail records why the session ended before it relayed: its result label value
// and, when it says more, its close reason.
func (s *Session) Fail(result, reason string) {
	s.Result, s.Reason = result, reason
}

// AdmitUser applies max_sessions_per_user and the user's quota, and makes the
// connection its user's, which a reload that removes the user cuts. A user
// removed by a reload while their login was under way is refused here, and so is
// a user whose allowance is used up under a refusing quota (the Outcome's Err
// says which, for a front that can tell the client). On a refusal the session
// has its result; the front answers.
func (s *Session) AdmitUser() Outcome {
	pol := s.conn.pol
	if cur := s.core.Policy(); cur != pol && cur.Roster != nil && !cur.Roster.Has(s.User) {
		return s.refuse(Outcome{Refusal: Denied, Result: metrics.ResultAuthFailed})
	}
	if !s.core.users.admit(s.User, pol.Config.Limits.MaxSessionsPerUser) {
		return s.refuse(Outcome{Refusal: LimitReached, Result: metrics.ResultLimitReached})
	}
	if !s.core.reserveSlot(s.Context(), s.User, pol.Config.Limits.MaxSessionsPerUser) {
		s.core.users.release(s.User)
		return s.refuse(Outcome{Refusal: LimitReached, Result: metrics.ResultLimitReached})
	}
	quota, err := s.core.usage.Admit(s.User, s.Front, s.Command)
	if err != nil {
		s.core.releaseUser(s.User)
		s.log.Info("session refused over quota", "err", err)
		return s.refuse(Outcome{Refusal: Denied, Result: metrics.ResultQuotaExceeded, Err: err})
	}
	s.quota = quota
	s.userAdmitted = true
	s.conn.mu.Lock()
	s.conn.owner, s.conn.owned = s.User, true
	s.conn.mu.Unlock()
	return Outcome{}
}

// refuse records o's result and returns o.
func (s *Session) refuse(o Outcome) Outcome {
	s.Result = o.Result
	return o
}

// Open marks the session as relaying, for the active-session gauge.
func (s *Session) Open() {
	s.opened = true
	s.Result = metrics.ResultOK
	s.core.rec.SessionOpened(s.Front, s.Command, s.App)
}

// Opened reports whether the session started relaying.
func (s *Session) Opened() bool { return s.opened }

// Reclassify moves an open session to app class app (a UDP association learns
// its class from its datagrams): the gauge follows at once, the accounting line
// at the end.
func (s *Session) Reclassify(app string) {
	if app == s.App {
		return
	}
	if s.opened {
		s.core.rec.SessionReclassified(s.Front, s.Command, s.App, app)
	}
	s.App = app
}

// Count adds n bytes moved in direction (metrics.DirectionUpload: client to
// destination) to the session's totals; the caller reports them to the recorder
// in batches.
func (s *Session) Count(direction string, n int64) {
	if direction == metrics.DirectionUpload {
		s.up.Add(n)
	} else {
		s.down.Add(n)
	}
	s.touch()
}

// Bytes returns the bytes moved so far, up and down.
func (s *Session) Bytes() (up, down int64) { return s.up.Load(), s.down.Load() }

func (s *Session) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// Touch records activity that moved no byte the session counts.
func (s *Session) Touch() { s.touch() }

// LastActivity returns when a byte last moved (or the session started).
func (s *Session) LastActivity() time.Time { return time.Unix(0, s.lastActivity.Load()) }

// IdleFor reports whether no byte moved in either direction for d. A direction
// waiting for tokens is not idle, however long the wait.
func (s *Session) IdleFor(d time.Duration) bool {
	if s.tokenWaits.Load() > 0 {
		s.touch()
		return false
	}
	return time.Since(s.LastActivity()) >= d
}

// End gives back the session's user slot and then writes its metrics and its
// accounting line. It runs once; the connection's End calls it too.
func (s *Session) End() {
	s.endOnce.Do(s.end)
}

func (s *Session) end() {
	s.lease.release()
	if s.userAdmitted {
		s.core.releaseUser(s.User)
	}
	limited := s.quota.Limited()
	s.quota.Close()
	if r := s.conn.cutBy.Load(); r != nil && s.opened {
		s.Reason = *r
	}
	if !s.opened && s.conn.Evicted() {
		s.Result, s.Reason = metrics.ResultLimitReached, ReasonEvicted
	}
	d := time.Since(s.start)
	if s.opened {
		s.core.rec.SessionClosed(s.Front, s.Command, s.App, s.Result, d)
	} else {
		s.core.rec.SessionRejected(s.Front, s.Command, s.App, s.Result)
	}
	if s.Reason == "" {
		s.Reason = s.Result
	}
	s.core.acct.LogAttrs(context.Background(), slog.LevelInfo, "session",
		slog.Uint64("session", s.id),
		slog.String("client", s.conn.peer.String()),
		slog.String("front", s.Front),
		slog.String("user", displayUser(s.User)),
		slog.String("command", s.Command),
		slog.String("destination", s.Requested),
		slog.String("dialled", s.Dialled),
		slog.String("app", s.App),
		slog.String("result", s.Result),
		slog.Int64("bytes_up", s.up.Load()),
		slog.Int64("bytes_down", s.down.Load()),
		slog.Duration("duration", d),
		slog.Duration("throttled_up", time.Duration(s.throttledUp.Load())),
		slog.Duration("throttled_down", time.Duration(s.throttledDown.Load())),
		slog.String("close_reason", s.Reason),
		slog.Bool("quota_limited", limited),
	)
}

// displayUser names the anonymous user of no-auth mode in logs.
func displayUser(u string) string {
	if u == "" {
		return "-"
	}
	return u
}

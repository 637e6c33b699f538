package tunnel

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
	"github.com/sockshaper/sockshaper/usage"
)

// record is what a session's accounting line says besides its counters: who
// and what (front, command, user, requested), where and as what (dialled,
// app), and how it ended (result, reason). Only the core writes it, from the
// request a front read ([Session.Read]), the outcomes of its own steps, and a
// front's refusals ([Session.Refuse]); its fields belong to the goroutine
// serving the session, then to the relay goroutine that finishes last.
type record struct {
	front     string // the protocol: socks5, http, https, http2
	command   string // a metrics command label value
	user      string // as logged in, or as tried when the login failed
	group     string // the logged-in user's shaping group, at the login
	requested string // the destination as the client gave it
	dialled   string // the address dialled (a UDP association's first peer)
	app       string // the app class
	result    string // a metrics result label value
	reason    string // the close reason; result when empty
	rule      string // the rule that denied the destination; "" none
}

// Session is one request on a connection, from its reading to its accounting
// line: a SOCKS5 connection carries one, an HTTP keep-alive connection one per
// request. Its counters are safe for concurrent use; its Record belongs to the
// goroutine serving it, then to the relay goroutine that finishes last.
type Session struct {
	record
	loginGroup string // the shaping group the user's login chose; "" none
	conn       *Conn
	core       *Core
	id         uint64
	start      time.Time
	log        *slog.Logger
	logh       lazyLog // log's handler once the user logged in

	opened       bool
	userAdmitted bool
	ticket       bool           // the user logged in with a Kerberos ticket
	quota        *usage.Session // the user's usage while admitted; nil without a store
	lease        sessionLease   // taken by Copy; the relay holds its own

	up, down                   atomic.Int64 // bytes
	throttledUp, throttledDown atomic.Int64 // nanoseconds
	lastActivity               atomic.Int64 // unix nanoseconds
	tokenWaits                 atomic.Int32 // directions waiting for tokens now
	writing                    atomic.Int32 // writes to a peer under way now
	endOnce                    sync.Once
}

// NewSession starts the connection's next session, spoken by front. The
// connection's first session starts at its accept, so that its handshake is
// part of it; later ones (HTTP keep-alive) start with their request.
func (conn *Conn) NewSession(front string) *Session {
	s := &Session{conn: conn, core: conn.core, id: conn.core.nextSession.Add(1), start: time.Now(), log: conn.log}
	s.front, s.command, s.app, s.result = front, metrics.CommandNone, shaping.Other, metrics.ResultProtocolError
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

// User returns who the session is for: as logged in, or as tried when the
// login failed; "" for the anonymous user of no-auth mode.
func (s *Session) User() string { return s.user }

// App returns the session's app class.
func (s *Session) App() string { return s.app }

// Requested returns the destination as the client wrote it.
func (s *Session) Requested() string { return s.requested }

// setUser records who the session is for, in the accounting line and its log.
func (s *Session) setUser(user string) {
	s.user = user
	s.logh = lazyLog{inner: s.core.log.Handler(), conn: s.conn, user: user, named: true}
	s.log = slog.New(&s.logh)
}

// Read records the request its front read: what the session is for, in its
// metrics and accounting line. A session ends with the last request read.
func (s *Session) Read(req Request) {
	s.command, s.requested = req.Command, req.Requested
}

// Refuse records a front's own refusal of the session's request, before it
// relayed: its result label value (a metrics.Result* value) and, when it says
// more, its close reason. The front answers its client itself.
func (s *Session) Refuse(result, reason string) {
	s.result, s.reason = result, reason
}

// Closing records why the session ends, when it is not the result: a
// handshake that timed out (ReasonTimeout), an open session broken by a
// socket error (ReasonError). A cut's reason, when the connection was cut,
// takes its place at the session's end.
func (s *Session) Closing(reason string) { s.reason = reason }

// admitUser applies max_sessions_per_user and the user's quota, and makes the
// connection its user's, which a reload that removes the user cuts. A user
// removed by a reload while their login was under way is refused here, and so is
// a user whose allowance is used up under a refusing quota (the Outcome's Err
// says which, for a front that can tell the client).
func (s *Session) admitUser() Outcome {
	pol := s.conn.pol
	if cur := s.core.Policy(); cur != pol && cur.Roster != nil && !s.ticket && !cur.Roster.Has(s.user) {
		return s.refuse(Outcome{Refusal: Denied, Result: metrics.ResultAuthFailed})
	}
	if !s.core.users.admit(s.user, pol.Config.Limits.MaxSessionsPerUser) {
		return s.refuse(Outcome{Refusal: LimitReached, Result: metrics.ResultLimitReached})
	}
	if !s.core.reserveSlot(s.Context(), s.user, pol.Config.Limits.MaxSessionsPerUser) {
		s.core.users.release(s.user)
		return s.refuse(Outcome{Refusal: LimitReached, Result: metrics.ResultLimitReached})
	}
	quota, err := s.core.usage.Admit(s.user, s.front, s.command)
	if err != nil {
		s.core.releaseUser(s.user)
		s.log.Info("session refused over quota", "err", err)
		return s.refuse(Outcome{Refusal: Denied, Result: metrics.ResultQuotaExceeded, Err: err})
	}
	s.quota = quota
	s.userAdmitted = true
	s.conn.mu.Lock()
	s.conn.owner, s.conn.owned, s.conn.ownerTicket = s.user, true, s.ticket
	s.conn.mu.Unlock()
	return Outcome{}
}

// refuse records o's result and returns o.
func (s *Session) refuse(o Outcome) Outcome {
	s.result = o.Result
	return o
}

// Open marks the session as relaying, for the active-session gauge.
func (s *Session) Open() {
	s.opened = true
	s.result = metrics.ResultOK
	s.core.rec.SessionOpened(s.front, s.command, s.app)
}

// Opened reports whether the session started relaying.
func (s *Session) Opened() bool { return s.opened }

// Reclassify moves an open session to app class app (a UDP association learns
// its class from its datagrams): the gauge follows at once, the accounting line
// at the end.
func (s *Session) Reclassify(app string) {
	if app == s.app {
		return
	}
	if s.opened {
		s.core.rec.SessionReclassified(s.front, s.command, s.app, app)
	}
	s.app = app
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
// waiting for tokens, or blocked in a write to a peer that takes its bytes
// slowly, is not idle, however long the wait: a slow reader's transfer must
// not be ended as idle (and cleanly, so that the reader would take it for
// whole); a reader that takes nothing is cut by the stall rule instead.
func (s *Session) IdleFor(d time.Duration) bool {
	if s.tokenWaits.Load() > 0 || s.writing.Load() > 0 {
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
		s.core.releaseUser(s.user)
	}
	limited := s.quota.Limited()
	s.quota.Close()
	if r := s.conn.cutReason(); r != nil && s.opened {
		s.reason = *r
	}
	if !s.opened && s.conn.Evicted() {
		s.result, s.reason = metrics.ResultLimitReached, ReasonEvicted
	}
	d := time.Since(s.start)
	if s.opened {
		s.core.rec.SessionClosed(s.front, s.command, s.app, s.result, d)
	} else {
		s.core.rec.SessionRejected(s.front, s.command, s.app, s.result)
	}
	if s.reason == "" {
		s.reason = s.result
	}
	s.core.acct.LogAttrs(context.Background(), slog.LevelInfo, "session",
		slog.Uint64("session", s.id),
		slog.String("client", s.conn.peer.String()),
		slog.String("front", s.front),
		slog.String("user", displayUser(s.user)),
		slog.String("group", s.group),
		slog.String("command", s.command),
		slog.String("destination", s.requested),
		slog.String("dialled", s.dialled),
		slog.String("app", s.app),
		slog.String("result", s.result),
		slog.Int64("bytes_up", s.up.Load()),
		slog.Int64("bytes_down", s.down.Load()),
		slog.Duration("duration", d),
		slog.Duration("throttled_up", time.Duration(s.throttledUp.Load())),
		slog.Duration("throttled_down", time.Duration(s.throttledDown.Load())),
		slog.String("close_reason", s.reason),
		slog.Bool("quota_limited", limited),
		slog.String("rule", s.rule),
	)
}

// displayUser names the anonymous user of no-auth mode in logs.
func displayUser(u string) string {
	if u == "" {
		return "-"
	}
	return u
}

// NotePeer records the first peer the session reached when no dial named one
// (a UDP association's first destination, a BIND's peer), for the accounting
// line.
func (s *Session) NotePeer(ap netip.AddrPort) {
	if s.dialled == "" {
		s.dialled = ap.String()
	}
}

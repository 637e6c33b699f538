package usage

import (
	"errors"
	"fmt"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// ErrOverQuota is what [QuotaError] unwraps to.
var ErrOverQuota = errors.New("quota used up")

// QuotaError refuses a session of a user whose allowance is used up and whose
// quota's over_rate is 0. Its message is short enough for a client: the HTTP
// front's 403 body, the SOCKS5 front's log line.
type QuotaError struct {
	User      string
	Group     string
	Period    string // Daily or Monthly
	Allowance configs.ByteSize
}

func (e *QuotaError) Error() string {
	return fmt.Sprintf("%s quota of %s used up", e.Period, e.Allowance)
}

// Unwrap returns [ErrOverQuota].
func (e *QuotaError) Unwrap() error { return ErrOverQuota }

// Session is one admitted session's hold on its user's usage: the usage view
// counts it by front and command while it lives. Its methods are safe for
// concurrent use, and do nothing on a nil *Session (what a nil Store admits).
// Bytes are counted with [Store.Add], not here.
type Session struct {
	s         *Store
	e         *entry
	user      string
	kind      sessionKind
	startOver bool   // the user was over a shaping quota when the session began
	crossings uint32 // the user's crossings when the session began
	closed    bool   // guarded by e.mu
}

// Admit decides whether user may open a session now: it returns a *[QuotaError]
// when their allowance is used up and their quota refuses (over_rate 0), and
// otherwise a Session to [Session.Close] when the session ends. front names the
// protocol the client spoke ("socks5", "http") and command what it asked for
// ("connect", "udp_associate"); both only label the usage view.
func (s *Store) Admit(user, front, command string) (*Session, error) {
	if s == nil {
		return nil, nil
	}
	now := s.now()
	c := s.cfg.Load()
	p := periodOf(now, c.loc)
	e, excl := s.acquire(user)
	e.mu.Lock()
	s.prepareLocked(e, user, c, p)
	ev, changed := e.checkLocked(user)
	var sess *Session
	var err error
	if e.refusedLocked() {
		err = &QuotaError{User: user, Group: e.group, Period: e.overIn, Allowance: allowance(e.quota, e.overIn)}
	} else {
		kind := sessionKind{front, command}
		if e.sessions == nil {
			e.sessions = make(map[sessionKind]int)
		}
		e.sessions[kind]++
		e.live++
		e.publishLocked()
		e.lastActive = now
		sess = &Session{s: s, e: e, user: user, kind: kind, startOver: e.over, crossings: e.crossings}
	}
	e.mu.Unlock()
	s.release(excl)
	if changed {
		s.emit(ev)
	}
	return sess, err
}

func allowance(q configs.Quota, period string) configs.ByteSize {
	if period == Monthly {
		return q.Monthly
	}
	return q.Daily
}

// Refuses reports whether user's sessions are refused now (over an allowance
// whose over_rate is 0). The daemon asks before cutting a user's live sessions
// on an OnQuota event, which may arrive after the period already turned.
func (s *Store) Refuses(user string) bool {
	if s == nil {
		return false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.users[user]
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refusedLocked()
}

// Throttled adds d, time the session waited on token buckets, to its user's
// throttled time today in the usage view.
func (ss *Session) Throttled(d time.Duration) {
	if ss == nil || d <= 0 {
		return
	}
	ss.e.mu.Lock()
	ss.e.throttled += d
	ss.e.mu.Unlock()
}

// Limited reports whether a quota limited the session: its user was over a
// shaping allowance when it began, or went over one while it ran. The
// accounting line says so.
func (ss *Session) Limited() bool {
	if ss == nil {
		return false
	}
	ss.e.mu.Lock()
	defer ss.e.mu.Unlock()
	return ss.startOver || ss.e.crossings != ss.crossings
}

// Close ends the session's hold; it is idempotent.
func (ss *Session) Close() {
	if ss == nil {
		return
	}
	now := ss.s.now()
	e := ss.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if ss.closed {
		return
	}
	ss.closed = true
	e.live--
	e.publishLocked()
	if e.sessions[ss.kind]--; e.sessions[ss.kind] <= 0 {
		delete(e.sessions, ss.kind)
	}
	e.lastActive = now
}

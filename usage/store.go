// Package usage counts each user's bytes by calendar day and month, decides who
// is over a quota, keeps the counts in state_dir across restarts, and reports
// them for the admin endpoint's usage view (GET /api/v1/users).
//
// A [Store] is the one place usage lives. The proxy asks it at admission whether
// a user may open a session ([Store.Admit]), reports bytes at the relay's flush
// points ([Store.Add]), and at the session's end asks whether the session was
// limited by a quota ([Session.Limited]). The shaper asks which users to hold
// to an over-quota rate ([Store.OverRate]), and the daemon hears of users going
// over or back under through [Options.OnQuota].
package usage

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

const (
	// RecentlyActive is how long a user stays in the usage view after their last
	// byte or session.
	RecentlyActive = 15 * time.Minute
	// DefaultFlushEvery is how often changed usage is written to state_dir: a
	// crash loses at most this much counting.
	DefaultFlushEvery = 5 * time.Second
)

// Options are the parts of a Store that outlive one config.
type Options struct {
	// Now reads the clock; nil is [time.Now].
	Now func() time.Time
	// Logger receives quota events and state file problems; nil discards.
	Logger *slog.Logger
	// OnQuota is called when a user goes over an allowance or back under it (a
	// new period, a reload). It runs on the goroutine of the call that noticed
	// (Add, Admit, Update, Tick), with no lock of the Store held, so it may call
	// the Store and the shaper; it must not block. Nil: nobody is told.
	OnQuota func(Event)
	// FlushEvery is how often [Store.Run] writes changed usage; 0 is
	// [DefaultFlushEvery].
	FlushEvery time.Duration
}

// Event is a user going over an allowance, or back under.
type Event struct {
	User  string
	Group string
	// Over is true when the user went over, false when they are back under.
	Over bool
	// Period is the allowance used up ([Daily] or [Monthly]) when Over.
	Period string
	// OverRate is what the user gets while over: a rate, or 0 when their new
	// sessions are refused and their live ones must end.
	OverRate configs.Rate
}

// storeConfig is the part of a config the Store applies, swapped whole.
type storeConfig struct {
	shaping configs.Shaping
	loc     *time.Location
	gen     uint64
}

// Store counts usage; see the package comment. Create it with [New]; it is safe
// for concurrent use. A nil *Store counts nothing and admits everyone (Add,
// Admit, OverRate and Refuses work on it), so a caller without quotas needs no
// checks.
type Store struct {
	now        func() time.Time
	log        *slog.Logger
	onQuota    func(Event)
	flushEvery time.Duration
	state      *stateDir // nil: nothing is kept

	cfg   atomic.Pointer[storeConfig]
	dirty atomic.Bool

	// mu guards users. Changing an entry holds it for reading, so that only an
	// exclusive holder (pruning) can drop entries.
	mu    sync.RWMutex
	users map[string]*entry

	tickMu   sync.Mutex
	lastTick period
	flushMu  sync.Mutex // one writer of the state file at a time
	closed   bool       // guarded by flushMu
	health   stateHealth
}

// New returns a Store applying cfg. When cfg.StateDir is set it takes the
// folder (creating it, and refusing one another process holds, one others may
// write to, and links where its files go) and loads the usage kept there: the
// entries of users it cannot use are set aside (logged, and kept in a copy of
// the file), the others keep their counts; a state file that cannot be read or
// parsed at all is logged and moved aside, and counting starts from zero. New
// fails when the folder cannot be used, or when what it sets aside cannot be
// kept (writing over it would lose it). Call [Store.Close] at shutdown.
func New(cfg *configs.Config, opts Options) (*Store, error) {
	s := &Store{
		now:        opts.Now,
		log:        opts.Logger,
		onQuota:    opts.OnQuota,
		flushEvery: opts.FlushEvery,
		users:      make(map[string]*entry),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.flushEvery <= 0 {
		s.flushEvery = DefaultFlushEvery
	}
	c := &storeConfig{shaping: cfg.Shaping, loc: location(cfg), gen: 1}
	s.cfg.Store(c)
	if cfg.StateDir != "" {
		st, err := openStateDir(cfg.StateDir)
		if err != nil {
			return nil, err
		}
		got, err := st.load(s.log)
		if err != nil {
			st.close()
			return nil, err
		}
		s.state, s.users = st, got.users
		s.health.h = StateHealth{Kept: true, LastWrite: s.now(), EntriesSetAside: len(got.bad), FileSetAside: got.corrupt}
		// The file is written again without the entries set aside (their
		// copy keeps them), so that they are not reported at every start.
		s.dirty.Store(len(got.bad) > 0)
	}
	now := s.now()
	p := periodOf(now, c.loc)
	for name, e := range s.users {
		s.prepareLocked(e, name, c, p)
		e.checkLocked(name) // no event: whoever was over before the restart was told then
	}
	s.lastTick = p
	return s, nil
}

func location(cfg *configs.Config) *time.Location {
	if cfg.Location != nil {
		return cfg.Location
	}
	return time.UTC
}

// prepareLocked resolves e's group and quota under c and rolls it to p.
func (s *Store) prepareLocked(e *entry, user string, c *storeConfig, p period) {
	if e.gen != c.gen {
		e.group, e.quota, e.limited = c.shaping.QuotaFor(user)
		e.gen = c.gen
	}
	e.rollLocked(p)
}

// acquire returns user's entry with s.mu held: for reading when the entry
// exists, exclusively when it had to be made. release undoes it.
func (s *Store) acquire(user string) (e *entry, exclusive bool) {
	s.mu.RLock()
	if e = s.users[user]; e != nil {
		return e, false
	}
	s.mu.RUnlock()
	s.mu.Lock()
	if e = s.users[user]; e == nil {
		e = &entry{}
		s.users[user] = e
	}
	return e, true
}

func (s *Store) release(exclusive bool) {
	if exclusive {
		s.mu.Unlock()
	} else {
		s.mu.RUnlock()
	}
}

// Add counts up bytes from user's client and down bytes toward it, of TCP or
// UDP. The relay calls it at its flush points (every 256 KiB or 5 s per
// direction, and whenever its [Grant] is used up, which keeps it within an
// allowance). It allocates nothing once the user is known and never waits for
// I/O; crossing an allowance calls [Options.OnQuota].
func (s *Store) Add(user string, up, down int64) {
	if s == nil || up <= 0 && down <= 0 {
		return
	}
	now := s.now()
	c := s.cfg.Load()
	p := periodOf(now, c.loc)
	e, excl := s.acquire(user)
	e.mu.Lock()
	s.prepareLocked(e, user, c, p)
	for d, n := range [2]int64{up, down} {
		if n > 0 {
			e.day[d] += n
			e.month[d] += n
			e.pending[d] += n
			e.rates[d].add(n, now)
		}
	}
	e.lastActive = now
	ev, changed := e.checkLocked(user)
	e.mu.Unlock()
	s.release(excl)
	s.dirty.Store(true)
	if changed {
		s.emit(ev)
	}
}

// OverRate reports whether user is over an allowance that shapes rather than
// refuses, and the rate to hold them to. It implements shaping.QuotaState; it
// never calls OnQuota, so the shaper may call it under its own lock.
func (s *Store) OverRate(user string) (configs.Rate, bool) {
	if s == nil {
		return 0, false
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.users[user]
	if e == nil {
		return 0, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.over || e.quota.OverRate <= 0 {
		return 0, false
	}
	return e.quota.OverRate, true
}

// emit logs ev and tells OnQuota.
func (s *Store) emit(ev Event) {
	if ev.Over {
		s.log.Info("quota exceeded", "user", ev.User, "group", ev.Group, "period", ev.Period,
			"over_rate", ev.OverRate.String(), "refused", ev.OverRate == 0)
	} else {
		s.log.Info("quota restored", "user", ev.User, "group", ev.Group)
	}
	if s.onQuota != nil {
		s.onQuota(ev)
	}
}

package shaping

import (
	"slices"
	"sync"
	"time"

	"github.com/sockshaper/sockshaper/cluster"
	"github.com/sockshaper/sockshaper/configs"
)

const (
	// minEvictEvery keeps a tiny IdleEviction from turning Run into a busy loop.
	minEvictEvery = time.Second
	// minRebuild is the map size below which shrinking is not worth a rebuild.
	minRebuild = 1024
)

// Registry hands out the buckets a session's bytes pass through, one per level
// of the shaping table (levels.go), and keeps them while sessions hold them: a
// user's own buckets are shared by all of that user's sessions, TCP and UDP
// alike; an app class's total and the global bucket by everyone's. Buckets no
// session held for Shaping.IdleEviction are dropped by [Registry.EvictIdle], so
// memory follows the number of recently active users. A Registry is safe for
// concurrent use; create one with [NewRegistry].
type Registry struct {
	mu      sync.Mutex
	cfg     configs.Shaping
	table   [numLevels]level
	buckets map[levelKey]*entry
	users   map[string]*userState
	peak    int // most entries users has held since it was made
	active  int // users with at least one live lease

	now   func() time.Time
	quota QuotaState // nil: no quotas
	open  []string   // the windows open when limits were last applied, sorted
	// demand is this instance's last cluster report, by bucket key (share.go).
	demand map[string]cluster.Demand
}

// entry is the buckets of one key of one level, both directions, and the
// leases that hold them.
type entry struct {
	pair      pair
	leases    int
	idleSince time.Time // when leases last dropped to 0
}

// userState is what the registry knows of a user besides their buckets: the
// shaping group their login chose, their turns on the shared buckets their
// sessions pass through (see turn.go), and their live leases.
type userState struct {
	group     string
	turns     map[levelKey]turns
	leases    int
	idleSince time.Time
}

// QuotaState tells the Registry which users are over a quota that shapes them
// rather than refusing them. The usage store implements it. OverRate must be
// cheap, safe for concurrent use, and must not call back into the Registry.
type QuotaState interface {
	// OverRate reports whether user is over a quota now and, if so, the rate
	// (each direction, above 0) to hold them to.
	OverRate(user string) (configs.Rate, bool)
}

// Option configures a Registry at [NewRegistry].
type Option func(*Registry)

// WithClock makes the Registry read the time from now instead of [time.Now]
// when it decides which windows are open.
func WithClock(now func() time.Time) Option { return func(r *Registry) { r.now = now } }

// WithQuota makes the Registry hold users over a quota to the rate q reports;
// see [Registry.RefreshUser].
func WithQuota(q QuotaState) Option { return func(r *Registry) { r.quota = q } }

// pair is the upload and download buckets of one level.
type pair [2]*bucket

const (
	upload   = 0 // client to destination
	download = 1 // destination to client
)

func newPair(l configs.Limit) pair {
	return pair{newBucket(l.Upload, l.Burst), newBucket(l.Download, l.Burst)}
}

func (p pair) set(l configs.Limit) {
	p[upload].set(l.Upload, l.Burst)
	p[download].set(l.Download, l.Burst)
}

// NewRegistry returns a Registry applying cfg, with the limits of the windows
// open now. It starts no goroutine: call [Registry.Run] to evict idle users and
// follow window edges. cfg's maps must not be modified afterwards.
func NewRegistry(cfg configs.Shaping, opts ...Option) *Registry {
	r := &Registry{
		cfg:     cfg,
		table:   levels(),
		buckets: make(map[levelKey]*entry),
		users:   make(map[string]*userState),
		now:     time.Now,
	}
	for _, o := range opts {
		o(r)
	}
	r.open = openWindows(&r.cfg, r.now())
	return r
}

// groupOfLocked returns user's shaping group: theirs in Members, else the group
// their login chose (when it is defined), else the default group. Members wins
// over the login: it is the operator's exception for one user, written in the
// config on purpose, where the directory's group is the rule for everyone.
func (r *Registry) groupOfLocked(user string) string {
	if g, ok := r.cfg.Members[user]; ok {
		return g
	}
	if u, ok := r.users[user]; ok && u.group != "" {
		if _, defined := r.cfg.Groups[u.group]; defined {
			return u.group
		}
	}
	return r.cfg.DefaultGroup
}

// ownLimitLocked returns the limit of user's own buckets: their group's (see
// groupOfLocked; none when the group is not defined) under the open windows,
// held to the over-quota rate while they are over a quota that shapes.
func (r *Registry) ownLimitLocked(user string) configs.Limit {
	l := groupLimit(&r.cfg, r.groupOfLocked(user), r.open)
	if r.quota != nil {
		if rate, over := r.quota.OverRate(user); over && rate > 0 {
			l = capped(l, rate)
		}
	}
	return l
}

// Update applies cfg to every live bucket in place: a user moved to another
// group, a changed group, app or global limit, windows. Sessions keep their
// leases and see the new limits from their next chunk; none is dropped.
// Sessions on the unshaped path (see [Lease.Unshaped]) do not pass through
// buckets and stay unshaped. cfg's maps must not be modified afterwards.
func (r *Registry) Update(cfg configs.Shaping) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg = cfg
	r.open = openWindows(&r.cfg, r.now())
	r.applyLocked()
}

// applyLocked sets every live bucket to the limits of r.cfg under r.open.
func (r *Registry) applyLocked() {
	for k, e := range r.buckets {
		e.pair.set(r.table[k.level].limit(r, k))
	}
}

// Tick applies the limits of the windows open at now when they differ from
// the last applied, as a reload does, and reports which windows are open and
// whether that changed. [Registry.Run] calls it every second.
func (r *Registry) Tick(now time.Time) (open []string, changed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	open = openWindows(&r.cfg, now)
	if slices.Equal(open, r.open) {
		return open, false
	}
	r.open = open
	r.applyLocked()
	return open, true
}

// OpenWindows returns the windows whose limits are applied now, sorted.
func (r *Registry) OpenWindows() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.open)
}

// RefreshUser applies user's own limit again, in place: the usage store calls
// it when the user goes over a quota, or back under at a new period, so that
// their live sessions follow at once.
func (r *Registry) RefreshUser(user string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := levelKey{level: levelUser, user: user}
	if e, ok := r.buckets[k]; ok {
		e.pair.set(r.table[levelUser].limit(r, k))
	}
}

// Acquire returns a lease on the buckets of one session of who (the anonymous
// user "" included) whose traffic is of app class app: one per level of the
// shaping table, in its order (the user's own, the user's for app, app's
// total, the global one). who's group, which their login chose, is the user's
// from now on (shaping.members wins over it): the user's own buckets follow
// its limit, at once for their live sessions too. The caller must call
// [Lease.Release] when the session ends.
func (r *Registry) Acquire(who Who, app string) *Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.userLocked(who.User)
	if u.group != who.Group {
		u.group = who.Group
		if e, ok := r.buckets[levelKey{level: levelUser, user: who.User}]; ok {
			e.pair.set(r.ownLimitLocked(who.User))
		}
	}
	if u.leases == 0 {
		r.active++
	}
	u.leases++
	l := &Lease{r: r, user: u}
	for i, lv := range r.table {
		k := lv.key(who, app)
		e := r.entryLocked(k)
		e.leases++
		l.entries[i] = e
		var ts turns
		if lv.shared {
			ts = u.turnsLocked(k)
		}
		for d := range l.chains {
			l.chains[d].add(e.pair[d], ts[d])
		}
	}
	for d := range l.chains {
		l.chains[d].hold()
	}
	l.unshaped = !l.chains[upload].Limited() && !l.chains[download].Limited()
	return l
}

// userLocked returns user's state, made on first use; r.mu is held.
func (r *Registry) userLocked(user string) *userState {
	u, ok := r.users[user]
	if !ok {
		u = &userState{turns: map[levelKey]turns{}}
		r.users[user] = u
		r.peak = max(r.peak, len(r.users))
	}
	return u
}

// entryLocked returns the buckets keyed k, made full at their level's limit on
// first use; r.mu is held.
func (r *Registry) entryLocked(k levelKey) *entry {
	e, ok := r.buckets[k]
	if !ok {
		e = &entry{pair: newPair(r.table[k.level].limit(r, k))}
		r.buckets[k] = e
	}
	return e
}

// turnsLocked returns the user's turns on the shared buckets keyed k; r.mu is
// held.
func (u *userState) turnsLocked(k levelKey) turns {
	ts, ok := u.turns[k]
	if !ok {
		ts = newTurns()
		u.turns[k] = ts
	}
	return ts
}

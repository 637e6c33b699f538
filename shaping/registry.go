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

// Registry hands out the buckets a session's bytes pass through and keeps them
// while a user has sessions: a user's own buckets are shared by all of that user's
// sessions, TCP and UDP alike. Buckets of users with no session for
// Shaping.IdleEviction are dropped by [Registry.EvictIdle], so memory follows the
// number of recently active users. A Registry is safe for concurrent use; create
// one with [NewRegistry].
type Registry struct {
	mu     sync.Mutex
	cfg    configs.Shaping
	users  map[string]*userBuckets
	peak   int // most entries users has held since it was made
	apps   map[string]*appBuckets
	global pair
	active int // users with at least one live lease

	now   func() time.Time
	quota QuotaState // nil: no quotas
	open  []string   // the windows open when limits were last applied, sorted
	// demand is this instance's last cluster report, by bucket key (share.go).
	demand map[string]cluster.Demand
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

// userBuckets are one user's buckets: their own, and theirs per app class;
// and their turns on the global buckets (see turn.go).
type userBuckets struct {
	own    pair
	global turns
	// group is the shaping group the user's login chose (a directory group), ""
	// when their login chose none; see [Registry.SetUserGroup].
	group     string
	apps      []userApp // few per user, so a slice beats a map in size and speed
	leases    int
	idleSince time.Time // when leases last dropped to 0
}

// userApp is a user's buckets for an app class, and their turns on the app
// class's total.
type userApp struct {
	app     string
	buckets pair
	total   turns
}

// appBuckets are the buckets an app class's traffic shares across users.
type appBuckets struct {
	total     pair
	leases    int
	idleSince time.Time
}

// NewRegistry returns a Registry applying cfg, with the limits of the windows
// open now. It starts no goroutine: call [Registry.Run] to evict idle users and
// follow window edges. cfg's maps must not be modified afterwards.
func NewRegistry(cfg configs.Shaping, opts ...Option) *Registry {
	r := &Registry{
		cfg:    cfg,
		users:  make(map[string]*userBuckets),
		apps:   make(map[string]*appBuckets),
		global: newPair(cfg.Global),
		now:    time.Now,
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
	if u, ok := r.users[user]; ok {
		if _, defined := r.cfg.Groups[u.group]; defined && u.group != "" {
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
	for name, u := range r.users {
		u.own.set(r.ownLimitLocked(name))
		for _, ua := range u.apps {
			perUser, _ := appLimits(&r.cfg, ua.app, r.open)
			ua.buckets.set(perUser)
		}
	}
	for name, a := range r.apps {
		_, total := appLimits(&r.cfg, name, r.open)
		a.total.set(total)
	}
	r.global.set(r.cfg.Global)
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
	if u, ok := r.users[user]; ok {
		u.own.set(r.ownLimitLocked(user))
	}
}

// SetUserGroup records the shaping group user's login chose (from their directory
// groups; "" for none): their own buckets follow that group's limit instead of
// shaping.default_group's, at once if they are live, until a later login chooses
// another or their buckets are evicted with the assignment. A group that is not
// defined under shaping.groups (removed by a reload) counts as none. An explicit
// shaping.members entry wins over it. A nil Registry does nothing.
func (r *Registry) SetUserGroup(user, group string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.userLocked(user)
	if u.leases == 0 {
		// Kept for IdleEviction even if the session that follows the login
		// never comes, so an eviction between the two cannot lose the group.
		u.idleSince = time.Now()
	}
	if u.group == group {
		return
	}
	u.group = group
	u.own.set(r.ownLimitLocked(user))
}

// Acquire returns a lease on the buckets of one session of user (the anonymous
// user "" included) whose traffic is of app class app: the user's own, the
// user's for app, app's total and the global ones. The caller must call
// [Lease.Release] when the session ends.
func (r *Registry) Acquire(user, app string) *Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.userLocked(user)
	a := r.appLocked(app)
	ua := u.appLocked(app, r)
	if u.leases == 0 {
		r.active++
	}
	u.leases++
	a.leases++
	l := &Lease{r: r, user: u, app: a}
	for d := range l.chains {
		l.chains[d].add(u.own[d], nil)
		l.chains[d].add(ua.buckets[d], nil)
		l.chains[d].add(a.total[d], ua.total[d])
		l.chains[d].add(r.global[d], u.global[d])
		l.chains[d].hold()
	}
	l.unshaped = !l.chains[upload].Limited() && !l.chains[download].Limited()
	return l
}

func (r *Registry) userLocked(user string) *userBuckets {
	u, ok := r.users[user]
	if !ok {
		u = &userBuckets{own: newPair(r.ownLimitLocked(user)), global: newTurns()}
		r.users[user] = u
		r.peak = max(r.peak, len(r.users))
	}
	return u
}

func (r *Registry) appLocked(app string) *appBuckets {
	a, ok := r.apps[app]
	if !ok {
		_, total := appLimits(&r.cfg, app, r.open)
		a = &appBuckets{total: newPair(total)}
		r.apps[app] = a
	}
	return a
}

func (u *userBuckets) appLocked(app string, r *Registry) userApp {
	for _, ua := range u.apps {
		if ua.app == app {
			return ua
		}
	}
	perUser, _ := appLimits(&r.cfg, app, r.open)
	ua := userApp{app: app, buckets: newPair(perUser), total: newTurns()}
	u.apps = append(u.apps, ua)
	return ua
}

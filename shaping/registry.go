package shaping

import (
	"sync"
	"time"

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
}

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

// userBuckets are one user's buckets: their own, and theirs per app class.
type userBuckets struct {
	own pair
	// group is the shaping group the user's login chose (a directory group), ""
	// when their login chose none; see [Registry.SetUserGroup].
	group     string
	apps      []userApp // few per user, so a slice beats a map in size and speed
	leases    int
	idleSince time.Time // when leases last dropped to 0
}

type userApp struct {
	app     string
	buckets pair
}

// appBuckets are the buckets an app class's traffic shares across users.
type appBuckets struct {
	total     pair
	leases    int
	idleSince time.Time
}

// NewRegistry returns a Registry applying cfg. It starts no goroutine: call
// [Registry.Run] to evict idle users periodically. cfg's maps must not be
// modified afterwards.
func NewRegistry(cfg configs.Shaping) *Registry {
	return &Registry{
		cfg:    cfg,
		users:  make(map[string]*userBuckets),
		apps:   make(map[string]*appBuckets),
		global: newPair(cfg.Global),
	}
}

// userLimit returns the per-user limit of user: their group in Members, else the
// group their login chose (loginGroup, when it is defined), else the default
// group's; none when that group is not defined. Members wins over the login: it is
// the operator's exception for one user, written in the config on purpose, where
// the directory's group is the rule for everyone.
func userLimit(cfg *configs.Shaping, user, loginGroup string) configs.Limit {
	group, ok := cfg.Members[user]
	if !ok {
		group = cfg.DefaultGroup
		if _, defined := cfg.Groups[loginGroup]; defined {
			group = loginGroup
		}
	}
	return cfg.Groups[group]
}

// Update applies cfg to every live bucket in place: a user moved to another
// group, a changed group, app or global limit. Sessions keep their leases and see
// the new limits from their next chunk; none is dropped. Sessions on the unshaped
// path (see [Lease.Unshaped]) do not pass through buckets and stay unshaped.
// cfg's maps must not be modified afterwards.
func (r *Registry) Update(cfg configs.Shaping) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg = cfg
	for name, u := range r.users {
		u.own.set(userLimit(&cfg, name, u.group))
		for _, ua := range u.apps {
			ua.buckets.set(cfg.Apps[ua.app].PerUser)
		}
	}
	for name, a := range r.apps {
		a.total.set(cfg.Apps[name].Total)
	}
	r.global.set(cfg.Global)
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
	u.own.set(userLimit(&r.cfg, user, group))
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
	ua := u.appLocked(app, &r.cfg)
	if u.leases == 0 {
		r.active++
	}
	u.leases++
	a.leases++
	l := &Lease{r: r, user: u, app: a}
	for d := range l.chains {
		l.chains[d].add(u.own[d])
		l.chains[d].add(ua[d])
		l.chains[d].add(a.total[d])
		l.chains[d].add(r.global[d])
		for _, bk := range l.chains[d].buckets[:l.chains[d].n] {
			bk.sessions.Add(1)
		}
	}
	l.unshaped = !l.chains[upload].Limited() && !l.chains[download].Limited()
	return l
}

func (r *Registry) userLocked(user string) *userBuckets {
	u, ok := r.users[user]
	if !ok {
		u = &userBuckets{own: newPair(userLimit(&r.cfg, user, ""))}
		r.users[user] = u
		r.peak = max(r.peak, len(r.users))
	}
	return u
}

func (r *Registry) appLocked(app string) *appBuckets {
	a, ok := r.apps[app]
	if !ok {
		a = &appBuckets{total: newPair(r.cfg.Apps[app].Total)}
		r.apps[app] = a
	}
	return a
}

func (u *userBuckets) appLocked(app string, cfg *configs.Shaping) pair {
	for _, ua := range u.apps {
		if ua.app == app {
			return ua.buckets
		}
	}
	p := newPair(cfg.Apps[app].PerUser)
	u.apps = append(u.apps, userApp{app: app, buckets: p})
	return p
}

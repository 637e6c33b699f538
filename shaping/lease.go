package shaping

import (
	"context"
	"maps"
	"sync/atomic"
	"time"
)

// Lease is one session's hold on its buckets, from [Registry.Acquire]. While any
// lease of a user is live their buckets are not evicted. Its methods are safe for
// concurrent use.
type Lease struct {
	r        *Registry
	user     *userState
	entries  [numLevels]*entry
	chains   [2]Chain // by direction: upload, download
	unshaped bool
	released atomic.Bool
}

// Upload returns the chain of buckets for bytes from the client to the
// destination.
func (l *Lease) Upload() *Chain { return &l.chains[upload] }

// Download returns the chain of buckets for bytes from the destination to the
// client.
func (l *Lease) Download() *Chain { return &l.chains[download] }

// Unshaped reports whether no bucket on either chain had a rate when the lease
// was acquired. The proxy then relays with the kernel's zero-copy path, which
// later reloads cannot slow down.
func (l *Lease) Unshaped() bool { return l.unshaped }

// Release ends the lease. The user's buckets become evictable once none of their
// leases is live. Release is idempotent; the chains stay usable but are no longer
// kept up to date once evicted.
func (l *Lease) Release() {
	if !l.released.CompareAndSwap(false, true) {
		return
	}
	r := l.r
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for d := range l.chains {
		l.chains[d].drop()
	}
	for _, e := range l.entries {
		if e.leases--; e.leases == 0 {
			e.idleSince = now
		}
	}
	if l.user.leases--; l.user.leases == 0 {
		l.user.idleSince = now
		r.active--
	}
}

// hold counts a live lease on every bucket of c: a session on each, and a user
// on each shared one whose turn had none; the Registry's mu is held.
func (c *Chain) hold() {
	for i, bk := range c.buckets[:c.n] {
		bk.sessions.Add(1)
		if t := c.turns[i]; t != nil {
			t.hold(bk)
		}
	}
}

// drop undoes hold when the lease ends; the Registry's mu is held.
func (c *Chain) drop() {
	for i, bk := range c.buckets[:c.n] {
		bk.sessions.Add(-1)
		if t := c.turns[i]; t != nil {
			t.drop(bk)
		}
	}
}

// ActiveUsers returns the number of users with at least one live lease.
func (r *Registry) ActiveUsers() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.active
}

// Users returns the number of users whose buckets the registry holds: the active
// ones and the idle ones not evicted yet.
func (r *Registry) Users() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.users)
}

// EvictIdle drops the buckets no lease has held since now minus
// Shaping.IdleEviction, of every level, and the users with none since then,
// and returns how many users it dropped. A user who comes back gets full
// buckets. When most of the bucket map is gone it is rebuilt, because a Go map
// keeps the memory of its largest size.
func (r *Registry) EvictIdle(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	cutoff := now.Add(-r.cfg.IdleEviction)
	for k, e := range r.buckets {
		if e.leases == 0 && !e.idleSince.After(cutoff) {
			delete(r.buckets, k)
		}
	}
	dropped := 0
	for name, u := range r.users {
		if u.leases == 0 && !u.idleSince.After(cutoff) {
			delete(r.users, name)
			dropped++
		}
	}
	r.shrinkLocked()
	return dropped
}

// shrinkLocked rebuilds the maps once the user map holds a quarter of its peak
// or less (the bucket map holds a few buckets per user): the factor of 4 makes
// each rebuild follow at least 3/4 of a peak's deletions, so rebuilds cost O(1)
// per user added. maps.Clone would keep the old size.
func (r *Registry) shrinkLocked() {
	if r.peak < minRebuild || len(r.users) > r.peak/4 {
		return
	}
	r.buckets = rebuilt(r.buckets)
	r.users = rebuilt(r.users)
	r.peak = len(r.users)
}

// rebuilt returns a copy of m sized for what it holds now.
func rebuilt[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	maps.Copy(out, m)
	return out
}

// Run calls EvictIdle every quarter of Shaping.IdleEviction (at least every
// second), following reloads, and Tick every second, until ctx ends. A user is
// thus dropped at most 1.25 × IdleEviction after their last session, and a
// window's edge reaches live buckets within a second.
func (r *Registry) Run(ctx context.Context) {
	t := time.NewTimer(r.evictEvery())
	defer t.Stop()
	windows := time.NewTicker(windowEvery)
	defer windows.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.EvictIdle(time.Now())
			t.Reset(r.evictEvery())
		case <-windows.C:
			r.Tick(r.now())
		}
	}
}

// windowEvery is how often Run looks at the clock for window edges: a window
// opens or closes on a minute, so a second's lateness is all an edge waits.
const windowEvery = time.Second

func (r *Registry) evictEvery() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(r.cfg.IdleEviction/4, minEvictEvery)
}

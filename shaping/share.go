package shaping

import (
	"strings"

	"github.com/sockshaper/sockshaper/cluster"
)

// A Registry shares its limits with the other instances of a cluster (package
// cluster): every cluster.Period it reports the demand on each limited bucket
// ([Registry.Report]) and applies its part of each limit from the view of all
// instances' demand ([Registry.Apply]). A bucket's key is the same on every
// instance: its level, user and app class, and direction.

// Bucket key kinds.
const (
	keyUser    = "u"  // a user's own
	keyUserApp = "ua" // a user's for an app class
	keyApp     = "a"  // an app class's total
	keyGlobal  = "g"
)

var directionNames = [2]string{"up", "down"}

// bucketKey names a bucket across instances. App class names hold no "|"
// (validation), so a user name may hold anything.
func bucketKey(kind, user, app string, dir int) string {
	return strings.Join([]string{kind, user, app, directionNames[dir]}, "|")
}

// sharedBucket is a limited bucket with its key, as Report and Apply walk them.
type sharedBucket struct {
	key string
	bk  *bucket
	// byUser is set on a bucket that users share (an app total, the global
	// one): within the instance it is divided between users, not sessions.
	byUser bool
}

// holders is what the bucket's part is divided by, within the instance and so
// across instances: its sessions, or on a bucket users share its users, so
// that a user's 100 sessions on one instance weigh as much as another user's
// one on another.
func (b sharedBucket) holders() int {
	if b.byUser {
		return int(b.bk.users.Load())
	}
	return int(b.bk.sessions.Load())
}

// sharedLocked calls f for every bucket of r with a rate; r.mu is held.
func (r *Registry) sharedLocked(f func(sharedBucket)) {
	for k, e := range r.buckets {
		lv := r.table[k.level]
		for dir, bk := range e.pair {
			if bk.rate > 0 {
				f(sharedBucket{bucketKey(lv.kind, k.user, k.app, dir), bk, lv.shared})
			}
		}
	}
}

// Report returns the demand on every limited bucket that passed bytes or had
// sessions waiting since the last report (and resets the counts): the bytes per
// second it passed over the cluster's period, whether a session waited, and how
// many sessions hold it (users, on a bucket users share: see holders). It keeps its own demand for the next Apply.
func (r *Registry) Report() cluster.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := cluster.Report{Buckets: map[string]cluster.Demand{}}
	r.sharedLocked(func(b sharedBucket) {
		passed, waited := b.bk.passed.Swap(0), b.bk.waited.Swap(false)
		if passed == 0 && !waited {
			return
		}
		rep.Buckets[b.key] = cluster.Demand{Used: float64(passed) / cluster.Period.Seconds(),
			Waiting: waited, Sessions: b.holders()}
	})
	r.demand = rep.Buckets
	return rep
}

// Apply sets every limited bucket to this instance's part of its limit, from the
// demand of every live instance (v) and this one's last report: split by
// cluster.Allocate while Redis answers; an equal part per instance last known
// while it does not (the whole limit when alone); the whole limit for a bucket
// no other instance uses. A bucket this instance has sessions on but did not
// report (a session that just started) counts as a newcomer with one session:
// it starts small and grows as it reports waiting, rather than take the whole
// limit from an instance already using it.
func (r *Registry) Apply(self string, v cluster.View) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sharedLocked(func(b sharedBucket) {
		b.bk.setShare(r.shareLocked(self, b, v))
	})
}

// shareLocked is b's part of its limit on this instance; r.mu is held.
func (r *Registry) shareLocked(self string, b sharedBucket, v cluster.View) float64 {
	if !v.Connected {
		return 1 / float64(max(v.Peers, 1))
	}
	var demands map[string]cluster.Demand
	for name, rep := range v.Others {
		if d, ok := rep.Buckets[b.key]; ok {
			if demands == nil {
				demands = map[string]cluster.Demand{}
			}
			demands[name] = d
		}
	}
	if demands == nil {
		return 1
	}
	mine, ok := r.demand[b.key]
	if !ok {
		mine = cluster.Demand{Sessions: max(b.holders(), 1)}
	}
	demands[self] = mine
	limit := float64(b.bk.rate)
	return cluster.Allocate(limit, self, demands) / limit
}

// setShare sets this instance's part of the bucket's rate (1 or 0: all of it).
// Small changes wait for a larger one, so that a share that wobbles with every
// report does not reset limiters: within 2% nothing changes.
func (bk *bucket) setShare(f float64) {
	if f >= 1 {
		f = 0
	}
	if cur := bk.share; cur == f || cur > 0 && f > 0 && f/cur > 0.98 && f/cur < 1.02 {
		return
	}
	bk.share = f
	bk.apply()
}

// Package cluster shares each user's limits among the sockshaper instances behind
// a load balancer, through Redis. The byte path stays local: every instance
// shapes with its own token buckets, whose rates are its part of each configured
// limit. Every Period an instance writes one report of the demand on its limited
// buckets (bytes moved, whether sessions waited, how many sessions) and of its
// sessions per user, and reads the reports of the other live instances; each
// instance then computes, with [Allocate], the same split of every limit from the
// same reports, and applies its own part. Redis sees a handful of commands per
// instance per period, however many users are active.
//
// When Redis cannot be reached, service goes on: each instance falls back to an
// equal part of every limit among the instances it last knew (the whole limit if
// alone), logs the outage once, and rejoins when Redis answers again. Nothing in
// Redis is needed to start an instance.
package cluster

import "math"

// Demand is one instance's use of one limited bucket over the last period.
type Demand struct {
	// Used is the bytes per second the bucket passed.
	Used float64 `json:"u"`
	// Waiting says sessions waited for the bucket's tokens: the instance could use
	// more than it has.
	Waiting bool `json:"w,omitempty"`
	// Sessions is how many sessions moved bytes through the bucket.
	Sessions int `json:"s,omitempty"`
}

// Headroom and floors of the split. An instance that did not wait is given what
// it used and a fifth more, so that it can grow before it waits; the parts of the
// instances that waited share the rest by their sessions, and never less than
// minSaturatedShare of the limit between them, so that an instance whose demand
// was low a moment ago is not starved while the others' reports catch up.
const (
	headroom          = 1.2
	minUnsaturated    = 0.01 // of the limit, for an instance that used next to nothing
	minSaturatedShare = 0.2
)

// Allocate splits limit (bytes per second) among the instances whose demands are
// given, keyed by instance, and returns the part of instance self. Instances that
// did not wait get what they used plus headroom; those that waited share what is
// left in proportion to their sessions (so sessions of one user are about equal
// across instances, as they are within one); when nobody waited, the spare is
// shared by sessions too, so that any instance can grow. An instance alone, or
// absent from demands, is given the whole limit.
//
// Demands come from other instances through Redis and are not trusted: a
// negative or NaN use counts as none, a use above the limit as the limit (no
// instance can pass more than all of it), and sessions are taken between 1 and
// what one instance could hold. So for any finite positive limit, whatever the
// demands, every instance's part is finite and above 0 and at most the limit,
// and the parts add up to the limit.
func Allocate(limit float64, self string, demands map[string]Demand) float64 {
	mine, ok := demands[self]
	if !ok || len(demands) == 1 || !(limit > 0) || math.IsInf(limit, 1) {
		return limit
	}
	// Work in fractions of the limit, so that no sum overflows whatever the limit.
	var claimed, waitingSessions, allSessions float64
	for _, d := range demands {
		allSessions += sessions(d)
		if d.Waiting {
			waitingSessions += sessions(d)
			continue
		}
		claimed += want(limit, d)
	}
	var part, total float64
	switch {
	case waitingSessions == 0 && claimed <= 1:
		// Nobody waits: everyone has what it uses, and the spare by sessions.
		return limit * min(want(limit, mine)+(1-claimed)*sessions(mine)/allSessions, 1)
	case waitingSessions == 0:
		// Claims above the limit (headroom): scale them down.
		return limit * want(limit, mine) / claimed
	}
	rest := max(1-claimed, minSaturatedShare)
	if mine.Waiting {
		part = rest * sessions(mine) / waitingSessions
	} else {
		part = want(limit, mine)
	}
	if total = claimed + rest; total > 1 {
		part /= total
	}
	return limit * min(part, 1)
}

// want is what an instance that did not wait is given, as a fraction of the
// limit: what it used (at most all of it), and headroom.
func want(limit float64, d Demand) float64 {
	used := d.Used / limit
	if !(used >= 0) { // negative, NaN
		used = 0
	}
	return max(min(used, 1)*headroom, minUnsaturated)
}

// sessions is an instance's weight: its sessions, at least one and at most
// what one instance could hold.
func sessions(d Demand) float64 { return float64(min(max(d.Sessions, 1), maxReportedSessions)) }

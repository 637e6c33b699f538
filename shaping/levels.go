package shaping

import (
	"github.com/sockshaper/sockshaper/configs"
)

// Who is a session's user as its login established them: the user name ("" for
// the anonymous user of no-auth mode) and the shaping group their login chose
// (a directory group; "" when it chose none). It travels with the session to
// its buckets.
type Who struct {
	User  string
	Group string
}

// A level is one row of the shaping table: a kind of bucket a session's bytes
// pass through, in the order they pass (the user's own, the user's for the app
// class, the app class's total, the global one). A level says what keys its
// buckets (a user, a user and an app class, an app class, nothing), where their
// limit comes from, and whether several users share them (then they are shared
// fairly between users first: see turn.go). Acquire, the limits' application
// (reload, windows, quotas), the cluster's shares and eviction all walk this
// table; a new level (a group's total, say) is one more row.
type level struct {
	// kind names the level in the buckets' keys across a cluster's instances.
	kind string
	// shared: several users' sessions pass through one bucket of the level.
	shared bool
	// key returns the key of the bucket a session of who, of app class app,
	// passes through at this level.
	key func(who Who, app string) levelKey
	// limit returns the limit of the bucket keyed k; r.mu is held.
	limit func(r *Registry, k levelKey) configs.Limit
}

// levelKey keys a bucket within the registry: its level (an index into
// levels) and what the level keys by.
type levelKey struct {
	level int
	user  string
	app   string
}

// The levels, by index into levels().
const (
	levelUser = iota
	levelUserApp
	levelApp
	levelGlobal
	numLevels
)

// levels returns the shaping table. It is a function, not a variable, so that
// nothing can change it.
func levels() [numLevels]level {
	return [numLevels]level{
		levelUser: {kind: keyUser,
			key:   func(who Who, _ string) levelKey { return levelKey{level: levelUser, user: who.User} },
			limit: func(r *Registry, k levelKey) configs.Limit { return r.ownLimitLocked(k.user) }},
		levelUserApp: {kind: keyUserApp,
			key: func(who Who, app string) levelKey { return levelKey{level: levelUserApp, user: who.User, app: app} },
			limit: func(r *Registry, k levelKey) configs.Limit {
				perUser, _ := appLimits(&r.cfg, k.app, r.open)
				return perUser
			}},
		levelApp: {kind: keyApp, shared: true,
			key: func(_ Who, app string) levelKey { return levelKey{level: levelApp, app: app} },
			limit: func(r *Registry, k levelKey) configs.Limit {
				_, total := appLimits(&r.cfg, k.app, r.open)
				return total
			}},
		levelGlobal: {kind: keyGlobal, shared: true,
			key:   func(Who, string) levelKey { return levelKey{level: levelGlobal} },
			limit: func(r *Registry, _ levelKey) configs.Limit { return r.cfg.Global }},
	}
}

package main

import (
	"math"
	"time"
)

// expectedRates are the water-filled per-user rates by role, bytes/s, and the
// fair share of the global cap of a user who wants more than it (0 when the
// cap does not bind).
type expectedRates struct{ hog, heavy, download, bulk, share float64 }

// expect returns what each role's users should get: the global cap shared
// max-min fairly between users (whatever their sessions), each capped by
// their own limits; and the mix's offered download, the users without a
// limit of their own left out.
func (cs *campus) expect() (expectedRates, float64) {
	m := cs.mix
	ds := m.demands(func(u int) float64 { return cs.limits.own(m.users[u]) }, cs.limits.Skype)
	fill := waterFill(ds, cs.limits.Global)
	next := 0
	at := func(role []int) float64 {
		i := next
		next += len(role)
		if len(role) == 0 || math.IsInf(fill[i], 0) {
			return 0
		}
		return fill[i]
	}
	e := expectedRates{hog: at(m.hog), heavy: at(m.heavy), download: at(m.download), bulk: at(m.bulk)}
	if level := waterLevel(ds, cs.limits.Global); !math.IsInf(level, 0) {
		e.share = level
	}
	return e, offeredBy(ds)
}

func (cs *campus) newResult(openTime time.Duration) *campusResult {
	c, m := &cs.o.campus, cs.mix
	var offered float64
	cs.expected, offered = cs.expect()
	return &campusResult{Scenario: "campus", Via: cs.o.proxy, Users: len(m.users), Addresses: countAddrs(m),
		Mix: campusMixInfo{UsersPerAddr: c.perAddr, Hogs: len(m.hog), HogSessions: m.hogSess,
			Heavy: len(m.heavy), HeavySessions: m.heavySess,
			Downloaders: len(m.download), DlSessions: m.dlSess, Callers: len(m.call), SkypeBulk: len(m.bulk),
			BrowseEvery: c.browse.Seconds(), Slowloris: c.slowloris, SlowlorisAddrs: c.slowAddrs,
			KeepAlive: c.keepPer * c.keepAddrs, KeepAliveAddrs: c.keepAddrs, KeepAliveEvery: cs.keepEvery().Seconds(),
			Guessers: c.guessers, GuessAddrs: c.guessAddr, GuessEvery: c.guessGap.Seconds(),
			WindowSecs: c.window.Seconds(), WarmupSecs: c.warmup.Seconds()},
		Limits: limitsMbps{Student: mbps(cs.limits.Student), Skype: mbps(cs.limits.Skype), Global: mbps(cs.limits.Global),
			GlobalShare: mbps(cs.expected.share)},
		OfferedMbps: mbps(offered), Flows: len(cs.flows), OpenSecs: openTime.Seconds(), cs: cs,
		Summary: campusSummary{Errors: map[string]int{}, Guesses: guessFigures{Outcomes: map[string]int{}},
			KeepAlive: keepFigures{Answers: map[string]int{}}}}
}

func countAddrs(m *campusMix) int {
	seen := map[[4]byte]bool{}
	for _, a := range m.addr {
		seen[a.As4()] = true
	}
	return len(seen)
}

package shaping

import (
	"maps"
	"slices"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// openWindows returns the names of cfg's windows open at t, sorted.
func openWindows(cfg *configs.Shaping, t time.Time) []string {
	var open []string
	for _, name := range slices.Sorted(maps.Keys(cfg.Windows)) {
		w := cfg.Windows[name]
		if w.Contains(t) {
			open = append(open, name)
		}
	}
	return open
}

// windowed returns base with the window limits of the open windows applied:
// each field that an open window sets replaces base's. When several open
// windows set a field, the most restrictive value wins (the lowest rate or
// burst, 0 counting as unlimited or default, the highest), so that every open
// window's limit holds whatever the order of the windows.
func windowed(base configs.Limit, open []string, during func(window string) (configs.WindowLimit, bool)) configs.Limit {
	var up, down *configs.Rate
	var burst *configs.ByteSize
	for _, name := range open {
		w, ok := during(name)
		if !ok {
			continue
		}
		up = tighter(up, w.Upload)
		down = tighter(down, w.Download)
		burst = tighter(burst, w.Burst)
	}
	if up != nil {
		base.Upload = *up
	}
	if down != nil {
		base.Download = *down
	}
	if burst != nil {
		base.Burst = *burst
	}
	return base
}

// tighter returns the more restrictive of two optional limits, where 0 means no
// limit and nil that the window does not set it.
func tighter[T configs.Rate | configs.ByteSize](a, b *T) *T {
	switch {
	case b == nil:
		return a
	case a == nil, *a == 0:
		return b
	case *b != 0 && *b < *a:
		return b
	}
	return a
}

// capped returns l with both rates held to at most r (r > 0), for a user over
// their quota. A rate it lowers takes the default burst of the new rate, since
// a burst sized for the group's rate would let seconds of traffic through.
func capped(l configs.Limit, r configs.Rate) configs.Limit {
	lowered := false
	if l.Upload == 0 || l.Upload > r {
		l.Upload, lowered = r, true
	}
	if l.Download == 0 || l.Download > r {
		l.Download, lowered = r, true
	}
	if lowered {
		l.Burst = 0
	}
	return l
}

// groupLimit returns the limit of group in cfg with the open windows applied.
func groupLimit(cfg *configs.Shaping, group string, open []string) configs.Limit {
	g := cfg.Groups[group]
	return windowed(g, open, func(w string) (configs.WindowLimit, bool) {
		wl, ok := g.During[w]
		return wl, ok
	})
}

// appLimits returns app's per-user and total limits in cfg with the open
// windows applied.
func appLimits(cfg *configs.Shaping, app string, open []string) (perUser, total configs.Limit) {
	a := cfg.Apps[app]
	perUser = windowed(a.PerUser, open, func(w string) (configs.WindowLimit, bool) {
		aw, ok := a.During[w]
		return aw.PerUser, ok
	})
	total = windowed(a.Total, open, func(w string) (configs.WindowLimit, bool) {
		aw, ok := a.During[w]
		return aw.Total, ok
	})
	return perUser, total
}

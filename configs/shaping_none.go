package configs

// Limits reports whether s sets any limit: a rate or burst of a group, an app
// class or the global bucket, a group's or a user's quota, or a time window's
// rates. A config without a shaping section sets none, so the proxy shapes
// nothing, unlike the embedded default config, which limits students.
func (s *Shaping) Limits() bool {
	for _, g := range s.Groups {
		if g.sets() || g.Quota != nil && g.Quota.Limited() {
			return true
		}
	}
	for _, a := range s.Apps {
		if a.PerUser.sets() || a.Total.sets() || len(a.During) > 0 {
			return true
		}
	}
	for _, q := range s.UserQuotas {
		if q.Limited() {
			return true
		}
	}
	return s.Global.sets()
}

// sets reports whether l sets a rate (its own or during a window).
func (l Limit) sets() bool {
	if l.Upload > 0 || l.Download > 0 {
		return true
	}
	for _, w := range l.During {
		if !w.Empty() {
			return true
		}
	}
	return false
}

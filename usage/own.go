package usage

import "time"

// UserReport returns user's own line of the usage view at now, as [Report]
// gives it, whether or not they were active lately: zero bytes, and the
// group and quota the config gives them, when they have used nothing yet.
// It reads no other user's entry, for the user's own page (/my-usage).
func (s *Store) UserReport(user string, now time.Time) UserReport {
	s.Tick(now)
	c := s.cfg.Load()
	p := periodOf(now, c.loc)
	s.mu.RLock()
	e := s.users[user]
	s.mu.RUnlock()
	if e == nil {
		e = &entry{} // not kept: a page view is no usage
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s.prepareLocked(e, user, c, p)
	return e.reportLocked(user, now)
}

// Period returns today and this month at now in the store's time zone
// (2006-01-02, 2006-01), and the zone's name, as [Report] gives them.
func (s *Store) Period(now time.Time) (day, month, zone string) {
	c := s.cfg.Load()
	p := periodOf(now, c.loc)
	return formatKey(p.day, false), formatKey(p.month, true), c.loc.String()
}

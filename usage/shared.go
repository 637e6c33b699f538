package usage

import (
	"github.com/sockshaper/sockshaper/cluster"
)

// A Store counts its users' bytes across the instances of a cluster through the
// cluster's exchange: each report carries what this instance counted since the
// last one, with the totals it knew before ([Store.Shared]); Redis adds them to
// the cluster's totals, and the totals it returns become this instance's counts
// ([Store.Settle]), so that a quota holds for a user whose sessions are spread
// over the instances. The state file keeps the totals this instance last knew.

// Shared returns what the store counted since its last report, user by user,
// for the cluster's exchange, and starts counting anew. Each entry carries the
// totals the store knew before those bytes, so that Redis can restore totals it
// lost (a restart without persistence). Nil when nothing was counted.
func (s *Store) Shared() *cluster.Usage {
	if s == nil {
		return nil
	}
	now := s.now()
	c := s.cfg.Load()
	p := periodOf(now, c.loc)
	u := &cluster.Usage{Day: formatKey(p.day, false), Month: formatKey(p.month, true)}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, e := range s.users {
		e.mu.Lock()
		if e.pending != [2]int64{} && e.at == p {
			u.Users = append(u.Users, cluster.UserUsage{User: name,
				Added:    e.pending,
				DayKnown: [2]int64{e.day[upload] - e.pending[upload], e.day[download] - e.pending[download]},
				MonthKnown: [2]int64{e.month[upload] - e.pending[upload],
					e.month[download] - e.pending[download]}})
			e.pending = [2]int64{}
		}
		e.mu.Unlock()
	}
	if len(u.Users) == 0 {
		return nil
	}
	return u
}

// Settle takes the cluster's totals after an exchange: each user's counts for
// the period named become the cluster's, plus what this instance counted since
// its report. A user crossing an allowance (or coming back under) is reported
// to OnQuota as with Add. Totals of a period that has ended are ignored.
func (s *Store) Settle(totals *cluster.UsageTotals) {
	if s == nil || totals == nil {
		return
	}
	c := s.cfg.Load()
	p := periodOf(s.now(), c.loc)
	if totals.Day != formatKey(p.day, false) || totals.Month != formatKey(p.month, true) {
		return
	}
	var events []Event
	s.mu.RLock()
	for name, t := range totals.Users {
		e := s.users[name]
		if e == nil {
			continue
		}
		e.mu.Lock()
		if e.at == p {
			for d := range 2 {
				e.day[d] = max(e.day[d], t.Day[d]+e.pending[d])
				e.month[d] = max(e.month[d], t.Month[d]+e.pending[d])
			}
			if ev, changed := e.checkLocked(name); changed {
				events = append(events, ev)
			}
		}
		e.mu.Unlock()
	}
	s.mu.RUnlock()
	s.dirty.Store(true)
	for _, ev := range events {
		s.emit(ev)
	}
}

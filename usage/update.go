package usage

import (
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// Update applies a reloaded config: groups, members, quotas and time zone. Users
// whose quota now puts them over, or back under, are reported to OnQuota. The
// state folder stays the one given to New.
func (s *Store) Update(cfg *configs.Config) {
	old := s.cfg.Load()
	c := &storeConfig{shaping: cfg.Shaping, loc: location(cfg), gen: old.gen + 1}
	s.cfg.Store(c)
	s.recheck(c, s.now(), false)
}

// recheck rolls and checks every entry under c at now, reports the changes,
// and, when prune is set, drops the entries not worth keeping.
func (s *Store) recheck(c *storeConfig, now time.Time, prune bool) {
	p := periodOf(now, c.loc)
	var events []Event
	s.mu.Lock()
	for name, e := range s.users {
		e.mu.Lock()
		s.prepareLocked(e, name, c, p)
		if ev, changed := e.checkLocked(name); changed {
			events = append(events, ev)
		}
		drop := prune && e.idleLocked(p, now)
		e.mu.Unlock()
		if drop {
			delete(s.users, name)
			s.dirty.Store(true)
		}
	}
	s.mu.Unlock()
	for _, ev := range events {
		s.emit(ev)
	}
}

// Tick starts new periods for every user when now is in a day other than the
// last Tick's: allowances used up yesterday (or last month) are lifted and
// reported to OnQuota, and users with nothing left to keep are dropped.
// [Store.Run] calls it every second.
func (s *Store) Tick(now time.Time) {
	c := s.cfg.Load()
	p := periodOf(now, c.loc)
	s.tickMu.Lock()
	later := p.day > s.lastTick.day
	if later {
		s.lastTick = p
	}
	s.tickMu.Unlock()
	if later {
		s.recheck(c, now, true)
	}
}

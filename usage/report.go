package usage

import (
	"cmp"
	"slices"
	"time"
)

// Report is the usage view: the answer of GET /api/v1/users. It names users, so
// the admin listener that serves it stays on loopback unless an operator
// decides otherwise.
type Report struct {
	Generated time.Time `json:"generated"`
	TimeZone  string    `json:"time_zone"`
	Day       string    `json:"day"`   // today, 2006-01-02 in TimeZone
	Month     string    `json:"month"` // this month, 2006-01
	// WindowsOpen are the shaping windows whose limits apply now.
	WindowsOpen []string     `json:"windows_open"`
	Users       []UserReport `json:"users"`
}

// UserReport is one user in the usage view. Byte counts and rates are bytes and
// bytes per second; upload is client to destination.
type UserReport struct {
	User  string `json:"user"` // "" is the anonymous user of a proxy without authentication
	Group string `json:"group"`
	// Active is true while the user has a live session.
	Active     bool      `json:"active"`
	LastActive time.Time `json:"last_active"`
	// Sessions are the live sessions by front and command.
	Sessions []SessionCount `json:"sessions"`
	Today    Bytes          `json:"today"`
	Month    Bytes          `json:"month"`
	// Quota is nil when no allowance applies to the user.
	Quota *QuotaReport `json:"quota,omitempty"`
	// Rate is an estimate over about the last 10 seconds.
	Rate             Rates   `json:"rate"`
	ThrottledSeconds float64 `json:"throttled_seconds"` // today, waiting on token buckets
}

// SessionCount is the number of live sessions of one front and command.
type SessionCount struct {
	Front   string `json:"front"`
	Command string `json:"command"`
	Count   int    `json:"count"`
}

// Bytes are byte counts by direction and together.
type Bytes struct {
	Upload   int64 `json:"upload"`
	Download int64 `json:"download"`
	Total    int64 `json:"total"`
}

// Rates are bytes per second by direction.
type Rates struct {
	Upload   float64 `json:"upload"`
	Download float64 `json:"download"`
}

// QuotaReport is where a user stands against their allowances.
type QuotaReport struct {
	Daily   *Allowance `json:"daily,omitempty"`
	Monthly *Allowance `json:"monthly,omitempty"`
	// Over is true while an allowance is used up; OverPeriod says which.
	Over       bool   `json:"over"`
	OverPeriod string `json:"over_period,omitempty"`
	// OverRate is the rate while over, bytes per second; 0 refuses sessions.
	OverRate int64 `json:"over_rate"`
}

// Allowance is one period's allowance: bytes allowed, used and left.
type Allowance struct {
	Limit int64 `json:"limit"`
	Used  int64 `json:"used"`
	Left  int64 `json:"left"`
}

// Report returns the usage view at now: the users with a live session or
// active in the last [RecentlyActive], or, with all, every user with usage this
// month; heaviest today first.
func (s *Store) Report(now time.Time, all bool) Report {
	s.Tick(now) // a new day starts for everyone, with its events, before the view
	c := s.cfg.Load()
	p := periodOf(now, c.loc)
	r := Report{
		Generated: now.UTC(), TimeZone: c.loc.String(),
		Day: formatKey(p.day, false), Month: formatKey(p.month, true),
		WindowsOpen: []string{}, Users: []UserReport{},
	}
	s.mu.RLock()
	for name, e := range s.users {
		e.mu.Lock()
		s.prepareLocked(e, name, c, p)
		if e.live > 0 || now.Sub(e.lastActive) <= RecentlyActive || all && e.month != [2]int64{} {
			r.Users = append(r.Users, e.reportLocked(name, now))
		}
		e.mu.Unlock()
	}
	s.mu.RUnlock()
	slices.SortFunc(r.Users, func(a, b UserReport) int {
		return cmp.Or(cmp.Compare(b.Today.Total, a.Today.Total), cmp.Compare(a.User, b.User))
	})
	return r
}

func (e *entry) reportLocked(name string, now time.Time) UserReport {
	u := UserReport{
		User: name, Group: e.group, Active: e.live > 0, LastActive: e.lastActive.UTC(),
		Sessions:         []SessionCount{},
		Today:            bytesOf(e.day),
		Month:            bytesOf(e.month),
		Rate:             Rates{Upload: e.rates[upload].at(now), Download: e.rates[download].at(now)},
		ThrottledSeconds: e.throttled.Seconds(),
	}
	for k, n := range e.sessions {
		u.Sessions = append(u.Sessions, SessionCount{Front: k.front, Command: k.command, Count: n})
	}
	slices.SortFunc(u.Sessions, func(a, b SessionCount) int {
		return cmp.Or(cmp.Compare(a.Front, b.Front), cmp.Compare(a.Command, b.Command))
	})
	if e.limited {
		q := &QuotaReport{Over: e.over, OverPeriod: e.overIn, OverRate: int64(e.quota.OverRate)}
		if e.quota.Daily > 0 {
			q.Daily = allowanceOf(int64(e.quota.Daily), u.Today.Total)
		}
		if e.quota.Monthly > 0 {
			q.Monthly = allowanceOf(int64(e.quota.Monthly), u.Month.Total)
		}
		u.Quota = q
	}
	return u
}

func bytesOf(b [2]int64) Bytes {
	return Bytes{Upload: b[upload], Download: b[download], Total: b[upload] + b[download]}
}

func allowanceOf(limit, used int64) *Allowance {
	return &Allowance{Limit: limit, Used: used, Left: max(limit-used, 0)}
}

// QuotaUsage calls f for every user with an allowance, in no order, with the
// bytes used and allowed in each period that has one, until f returns false.
// The per-user quota metrics read it at each scrape.
func (s *Store) QuotaUsage(f func(user, period string, used, limit int64) bool) {
	now := s.now()
	s.Tick(now)
	c := s.cfg.Load()
	p := periodOf(now, c.loc)
	type row struct {
		user, period string
		used, limit  int64
	}
	var rows []row
	s.mu.RLock()
	for name, e := range s.users {
		e.mu.Lock()
		s.prepareLocked(e, name, c, p)
		if e.limited && e.quota.Daily > 0 {
			rows = append(rows, row{name, Daily, e.day[upload] + e.day[download], int64(e.quota.Daily)})
		}
		if e.limited && e.quota.Monthly > 0 {
			rows = append(rows, row{name, Monthly, e.month[upload] + e.month[download], int64(e.quota.Monthly)})
		}
		e.mu.Unlock()
	}
	s.mu.RUnlock()
	for _, r := range rows {
		if !f(r.user, r.period, r.used, r.limit) {
			return
		}
	}
}

package configs

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Quota is a user's volume allowance: bytes of TCP and UDP, both directions
// together, per calendar day and per calendar month of the config's time zone.
type Quota struct {
	// Daily is the allowance per day; 0: no daily allowance.
	Daily ByteSize `yaml:"daily"`
	// Monthly is the allowance per month; 0: no monthly allowance.
	Monthly ByteSize `yaml:"monthly"`
	// OverRate is the rate, each direction, that a user over an allowance is
	// shaped to until the period ends. 0 refuses the user's new sessions and
	// ends their live ones until then.
	OverRate Rate `yaml:"over_rate"`
}

// Limited reports whether q sets an allowance; a quota that sets none exempts
// the user.
func (q Quota) Limited() bool { return q.Daily > 0 || q.Monthly > 0 }

// GroupOf returns the group of user: theirs in Members, else DefaultGroup.
func (s *Shaping) GroupOf(user string) string {
	if g, ok := s.Members[user]; ok {
		return g
	}
	return s.DefaultGroup
}

// QuotaFor returns user's group and the quota that applies to them: their
// entry in UserQuotas, else their group's. ok is false when no allowance
// applies.
func (s *Shaping) QuotaFor(user string) (group string, q Quota, ok bool) {
	group = s.GroupOf(user)
	if uq, found := s.UserQuotas[user]; found {
		return group, uq, uq.Limited()
	}
	if gq := s.Groups[group].Quota; gq != nil {
		return group, *gq, gq.Limited()
	}
	return group, Quota{}, false
}

// HasQuotas reports whether some user could have an allowance, so that usage
// must be counted and kept.
func (s *Shaping) HasQuotas() bool {
	for _, g := range s.Groups {
		if g.Quota != nil && g.Quota.Limited() {
			return true
		}
	}
	for _, q := range s.UserQuotas {
		if q.Limited() {
			return true
		}
	}
	return false
}

// WindowLimit is what a window changes of a group's limit, or of an app
// class's per-user or total limit, while it is open: the fields it sets replace
// the level's own (0 lifts a rate), the fields it leaves out keep them.
type WindowLimit struct {
	Upload   *Rate     `yaml:"upload"`
	Download *Rate     `yaml:"download"`
	Burst    *ByteSize `yaml:"burst"`
}

// Empty reports whether w changes nothing.
func (w WindowLimit) Empty() bool { return w.Upload == nil && w.Download == nil && w.Burst == nil }

// AppWindow is what a window changes of an app class's limits.
type AppWindow struct {
	PerUser WindowLimit `yaml:"per_user"`
	Total   WindowLimit `yaml:"total"`
}

// Window is a named weekly time window, such as lecture hours. It is open on
// Days from each start to end of Hours, on the wall clock of its time zone, so
// daylight saving time moves it with the clock.
type Window struct {
	// Days are weekdays ("mon"..."sun"), ranges of them ("mon-fri", "fri-mon")
	// and lists of both ("mon,wed-fri"); "daily" is every day. A span of Hours
	// that runs past midnight belongs to the day it starts on.
	Days string `yaml:"days"`
	// Hours are spans "HH:MM-HH:MM", start included, end excluded, separated by
	// commas ("08:00-12:00,13:00-18:00"); "24:00" ends a span at midnight, and a
	// span that ends at or before its start runs past midnight ("22:00-06:00").
	Hours string `yaml:"hours"`
	// TimeZone is the IANA time zone of Hours; empty: the config's time_zone.
	TimeZone string `yaml:"time_zone"`

	// Weekdays, Spans and Location are Days, Hours and TimeZone parsed, filled
	// by validation.
	Weekdays Weekdays       `yaml:"-"`
	Spans    []Span         `yaml:"-"`
	Location *time.Location `yaml:"-"`
}

// Weekdays is a set of days of the week: bit d is [time.Weekday] d.
type Weekdays uint8

// Has reports whether d is in the set.
func (w Weekdays) Has(d time.Weekday) bool { return w&(1<<d) != 0 }

// Span is a daily span of wall-clock minutes since midnight: Start included,
// End excluded. End <= Start runs past midnight into the next day.
type Span struct{ Start, End int }

const minutesPerDay = 24 * 60

// Contains reports whether the window is open at t.
func (w *Window) Contains(t time.Time) bool {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	day, minute := lt.Weekday(), lt.Hour()*60+lt.Minute()
	yesterday := (day + 6) % 7
	for _, s := range w.Spans {
		if s.Start < s.End {
			if w.Weekdays.Has(day) && s.Start <= minute && minute < s.End {
				return true
			}
			continue
		}
		if w.Weekdays.Has(day) && minute >= s.Start || w.Weekdays.Has(yesterday) && minute < s.End {
			return true
		}
	}
	return false
}

var dayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseDays parses a window's days: "mon-fri", "sat,sun", "mon,wed-fri",
// "fri-mon" (a range may wrap past Sunday) or "daily". Names are three-letter
// English weekdays in any case.
func ParseDays(s string) (Weekdays, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	if t == "daily" {
		return 0x7f, nil
	}
	if t == "" {
		return 0, errors.New(`days are empty; write weekdays such as "mon-fri" or "daily"`)
	}
	var set Weekdays
	for _, part := range strings.Split(t, ",") {
		first, last, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := dayNumber(first)
		if err != nil {
			return 0, fmt.Errorf("days %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = dayNumber(last); err != nil {
				return 0, fmt.Errorf("days %q: %w", s, err)
			}
		}
		for d := a; ; d = (d + 1) % 7 {
			set |= 1 << d
			if d == b {
				break
			}
		}
	}
	return set, nil
}

func dayNumber(s string) (int, error) {
	s = strings.TrimSpace(s)
	for i, n := range dayNames {
		if s == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q is not a weekday; write mon, tue, wed, thu, fri, sat or sun", s)
}

// ParseHours parses a window's hours: "08:00-18:00", "22:00-06:00" (past
// midnight), "00:00-24:00" (the whole day) or several such spans separated by
// commas. A span may not start where it ends.
func ParseHours(s string) ([]Span, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New(`hours are empty; write spans such as "08:00-18:00"`)
	}
	var spans []Span
	for _, part := range strings.Split(s, ",") {
		start, end, ok := strings.Cut(strings.TrimSpace(part), "-")
		if !ok {
			return nil, fmt.Errorf("hours %q: span %q is not HH:MM-HH:MM", s, strings.TrimSpace(part))
		}
		a, err := clockMinute(start, false)
		if err != nil {
			return nil, fmt.Errorf("hours %q: %w", s, err)
		}
		b, err := clockMinute(end, true)
		if err != nil {
			return nil, fmt.Errorf("hours %q: %w", s, err)
		}
		if a == b {
			return nil, fmt.Errorf("hours %q: span %q starts where it ends; write 00:00-24:00 for the whole day",
				s, strings.TrimSpace(part))
		}
		spans = append(spans, Span{Start: a, End: b})
	}
	return spans, nil
}

// clockMinute reads "HH:MM" as minutes since midnight; "24:00" only as an end.
func clockMinute(s string, end bool) (int, error) {
	s = strings.TrimSpace(s)
	hh, mm, ok := strings.Cut(s, ":")
	h, herr := strconv.Atoi(hh)
	m, merr := strconv.Atoi(mm)
	switch {
	case !ok || len(hh) != 2 || len(mm) != 2 || herr != nil || merr != nil || h < 0 || m < 0:
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	case h == 24 && m == 0 && end:
		return minutesPerDay, nil
	case h > 23 || m > 59:
		return 0, fmt.Errorf("%q is not a time of day from 00:00 to 23:59 (24:00 may end a span)", s)
	}
	return h*60 + m, nil
}

// FormatHours writes spans as [ParseHours] reads them.
func FormatHours(spans []Span) string {
	parts := make([]string, len(spans))
	for i, s := range spans {
		parts[i] = fmt.Sprintf("%02d:%02d-%02d:%02d", s.Start/60, s.Start%60, s.End/60, s.End%60)
	}
	return strings.Join(parts, ",")
}

// LoadTimeZone loads an IANA time zone; "" and "UTC" are UTC. The binary embeds
// the time zone database (time/tzdata), so this works without one installed.
func LoadTimeZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	if strings.EqualFold(name, "local") {
		return nil, errors.New(`"Local" depends on the host; name the zone, such as Europe/Berlin`)
	}
	return time.LoadLocation(name)
}

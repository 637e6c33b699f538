package usage

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/configs"
)

// Directions index the byte counts: upload is client to destination.
const (
	upload   = 0
	download = 1
)

// period identifies a calendar day (yyyymmdd) and month (yyyymm) of the
// store's time zone; integers, so that counting allocates nothing.
type period struct{ day, month int32 }

func periodOf(t time.Time, loc *time.Location) period {
	y, m, d := t.In(loc).Date()
	return period{day: int32(y*10000 + int(m)*100 + d), month: int32(y*100 + int(m))}
}

// Period names, the values of Event.Period and of the period metric label.
const (
	Daily   = "daily"
	Monthly = "monthly"
)

// rateTau is the time constant of the current-rate estimate: the relay reports
// bytes every 256 KiB or 5 s per direction, so the estimate smooths over a few
// reports.
const rateTau = 10 * time.Second

// ewma is an exponentially weighted rate in bytes per second.
type ewma struct {
	rate float64
	last time.Time
}

func (e *ewma) add(n int64, now time.Time) {
	e.rate = e.at(now) + float64(n)/rateTau.Seconds()
	e.last = now
}

func (e *ewma) at(now time.Time) float64 {
	if e.last.IsZero() {
		return 0
	}
	dt := now.Sub(e.last).Seconds()
	if dt <= 0 {
		return e.rate
	}
	return e.rate * math.Exp(-dt/rateTau.Seconds())
}

// sessionKind is a session's front and command, for the usage view.
type sessionKind struct{ front, command string }

// entry is one user's usage. Its fields are guarded by mu; the store's map
// lock is held (for reading at least) while an entry is changed, so that
// pruning never drops an entry in use.
type entry struct {
	mu sync.Mutex

	gen     uint64 // the store config generation group and quota were resolved at
	group   string
	quota   configs.Quota
	limited bool // quota sets an allowance

	at    period
	day   [2]int64 // bytes today, by direction
	month [2]int64 // bytes this month, by direction
	// pending is what this instance counted of day and month since its last
	// report to the other instances of a cluster (shared.go).
	pending [2]int64

	over      bool
	overIn    string // the period whose allowance is used up, while over
	crossings uint32 // times the user went over; a session compares it at its start and end

	// The user's standing for the grants of their relays (grant.go), read at
	// every step without a lock: left is published under mu whenever the
	// counts, the live sessions or the quota change, with parts and floor;
	// unreported is kept by the grants themselves.
	left       atomic.Int64 // bytes left of the tightest allowance; NoLimit, or 0 when refused
	parts      atomic.Int64 // directions of the live sessions, which share what is left
	floor      atomic.Int64 // the smallest share
	unreported atomic.Int64 // bytes the grants' relays moved and have not reported yet

	live       int
	sessions   map[sessionKind]int
	lastActive time.Time
	throttled  time.Duration // today
	rates      [2]ewma
}

// rollLocked starts the periods of p when they are later than the entry's.
// An earlier p (a caller that read the clock just before another rolled the
// day, or a clock stepped back) counts into the entry's periods, never
// restarting them.
func (e *entry) rollLocked(p period) {
	if p.day > e.at.day {
		e.day = [2]int64{}
		e.pending = [2]int64{}
		e.throttled = 0
		e.at.day = p.day
	}
	if p.month > e.at.month {
		e.month = [2]int64{}
		e.at.month = p.month
	}
}

// checkLocked decides whether the user is over an allowance, sets the share of
// their relays' directions, and reports a change as an event.
func (e *entry) checkLocked(user string) (Event, bool) {
	ev, changed := e.overLocked(user)
	e.publishLocked()
	return ev, changed
}

func (e *entry) overLocked(user string) (Event, bool) {
	over, in := false, ""
	if e.limited {
		switch {
		case e.quota.Daily > 0 && e.day[upload]+e.day[download] >= int64(e.quota.Daily):
			over, in = true, Daily
		case e.quota.Monthly > 0 && e.month[upload]+e.month[download] >= int64(e.quota.Monthly):
			over, in = true, Monthly
		}
	}
	if over == e.over {
		e.overIn = in
		return Event{}, false
	}
	e.over, e.overIn = over, in
	if over {
		e.crossings++
	}
	return Event{User: user, Group: e.group, Over: over, Period: in, OverRate: e.quota.OverRate}, true
}

// refusedLocked reports whether the user is over an allowance whose over_rate
// is 0.
func (e *entry) refusedLocked() bool { return e.over && e.quota.OverRate == 0 }

// idle reports whether the entry holds nothing worth keeping at p and now:
// no live session, no bytes this month, not active recently.
func (e *entry) idleLocked(p period, now time.Time) bool {
	return e.live == 0 && (e.at.month != p.month || e.month == [2]int64{}) && now.Sub(e.lastActive) > RecentlyActive
}

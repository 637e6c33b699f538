package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultPerUserMaxUsers is the per-user series cap used when none is configured.
// With two directions and a handful of app classes it bounds the per-user series at
// about ten thousand, which one Prometheus server scrapes without effort; a campus
// with more users than that should not export per-user series at all.
const DefaultPerUserMaxUsers = 1000

// AnonymousUser is the user label value of traffic with no authenticated user, in
// no-auth mode. The dashes make a clash with a real account unlikely; a users file
// that does hold a user of this name shares its series.
const AnonymousUser = "-anonymous-"

// perUser exports bytes by user for the first max distinct users seen and adds the
// bytes of every further user to a dropped counter, so the series count stays
// bounded whatever the number of users. Its methods are safe for concurrent use.
type perUser struct {
	bytes   *prometheus.CounterVec // sockshaper_user_transferred_bytes_total{user, app, direction}
	dropped *prometheus.CounterVec // sockshaper_user_series_dropped_bytes_total{app, direction}

	// mu guards the fields below. Counting bytes of a known user, or of any user
	// once the cap is reached, takes it only for reading.
	mu    sync.RWMutex
	on    bool
	max   int
	users map[string]struct{} // users with series in bytes
}

// newPerUser returns the per-user collectors with the given settings.
func newPerUser(on bool, maxUsers int) *perUser {
	p := &perUser{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "user_transferred_bytes_total",
			Help:      "Payload bytes relayed, by user, app class and direction. Exported only with metrics.per_user, for at most metrics.per_user_max_users users.",
		}, []string{"user", "app", "direction"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "user_series_dropped_bytes_total",
			Help:      "Payload bytes of users left out of sockshaper_user_transferred_bytes_total because metrics.per_user_max_users users were already exported, by app class and direction.",
		}, []string{"app", "direction"}),
		users: make(map[string]struct{}),
	}
	p.set(on, maxUsers)
	return p
}

// add counts n bytes of user, or drops them to the dropped counter when user is new
// and the cap is reached. It does nothing while per-user export is off.
func (p *perUser) add(user, app, direction string, n float64) {
	if user == "" {
		user = AnonymousUser
	}
	p.mu.RLock()
	if !p.on {
		p.mu.RUnlock()
		return
	}
	_, known := p.users[user]
	if known || len(p.users) >= p.max {
		p.count(known, user, app, direction, n)
		p.mu.RUnlock()
		return
	}
	p.mu.RUnlock()

	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on { // turned off while the lock was free
		return
	}
	_, known = p.users[user]
	if !known && len(p.users) < p.max {
		p.users[user] = struct{}{}
		known = true
	}
	p.count(known, user, app, direction, n)
}

// count adds n to user's series when known, else to the dropped counter. The caller
// holds mu, for reading at least, so that set cannot delete a series being added to.
func (p *perUser) count(known bool, user, app, direction string, n float64) {
	if known {
		p.bytes.WithLabelValues(user, app, direction).Add(n)
		return
	}
	p.dropped.WithLabelValues(app, direction).Add(n)
}

// set applies new settings; see [Metrics.SetPerUser].
func (p *perUser) set(on bool, maxUsers int) {
	if maxUsers <= 0 {
		maxUsers = DefaultPerUserMaxUsers
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !on || len(p.users) > maxUsers {
		p.bytes.Reset()
		clear(p.users)
	}
	p.on, p.max = on, maxUsers
}

// exported reports how many users have per-user series.
func (p *perUser) exported() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.users)
}

// settings returns whether per-user export is on and its cap.
func (p *perUser) settings() (on bool, maxUsers int) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.on, p.max
}

package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// children caches the children of one vector by their label values. A vector's
// WithLabelValues hashes and validates every value at each call; a session
// makes about ten such calls (opened, closed, its bytes, its dial, its login),
// a measurable share of a short session's cost under churn (issue 24). The
// label values of the cached vectors come from fixed sets (fronts, commands,
// results, directions, transports, the configured app classes), so the cache
// stays small, and sockshaper never deletes those series, so a cached child
// stays the one exported.
type children[K comparable, M any] struct {
	mu    sync.RWMutex
	m     map[K]M
	child func(K) M // the vector's WithLabelValues for the key's values
}

func newChildren[K comparable, M any](child func(K) M) *children[K, M] {
	return &children[K, M]{m: make(map[K]M), child: child}
}

// of returns the child of the key's label values.
func (c *children[K, M]) of(k K) M {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = c.child(k)
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
	return v
}

// Keys of the cached vectors, in their label order.
type (
	label2 struct{ a, b string }
	label3 struct{ a, b, c string }
	label4 struct{ a, b, c, d string }
)

// sessionChildren are the cached children of the vectors a session records
// into.
type sessionChildren struct {
	active      *children[label3, prometheus.Gauge]    // sessionsActive{front, command, app}
	total       *children[label4, prometheus.Counter]  // sessionsTotal{front, command, app, result}
	duration    *children[string, prometheus.Observer] // sessionDuration{app}
	transferred *children[label3, prometheus.Counter]  // transferred{app, direction, transport}
	dial        *children[string, prometheus.Observer] // dialDuration{result}
	auth        *children[string, prometheus.Counter]  // authAttempts{result}
	throttled   *children[label2, prometheus.Counter]  // throttled{app, direction}
	slots       *children[string, prometheus.Gauge]    // budget.handshakesActive{stage}
}

func newSessionChildren(m *Metrics) *sessionChildren {
	return &sessionChildren{
		active: newChildren(func(k label3) prometheus.Gauge { return m.sessionsActive.WithLabelValues(k.a, k.b, k.c) }),
		total: newChildren(func(k label4) prometheus.Counter {
			return m.sessionsTotal.WithLabelValues(k.a, k.b, k.c, k.d)
		}),
		duration: newChildren(func(app string) prometheus.Observer { return m.sessionDuration.WithLabelValues(app) }),
		transferred: newChildren(func(k label3) prometheus.Counter {
			return m.transferred.WithLabelValues(k.a, k.b, k.c)
		}),
		dial:      newChildren(func(r string) prometheus.Observer { return m.dialDuration.WithLabelValues(r) }),
		auth:      newChildren(func(r string) prometheus.Counter { return m.authAttempts.WithLabelValues(r) }),
		throttled: newChildren(func(k label2) prometheus.Counter { return m.throttled.WithLabelValues(k.a, k.b) }),
		slots:     newChildren(func(s string) prometheus.Gauge { return m.budget.handshakesActive.WithLabelValues(s) }),
	}
}

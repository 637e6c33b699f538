package metrics

import "github.com/prometheus/client_golang/prometheus"

// Values of the scope label of sockshaper_handshakes_evicted_total: which cap was
// full when a new connection took the place of the oldest unfinished handshake.
const (
	EvictedClient = "client" // the connection's client address (IPv6: its /64)
	EvictedGlobal = "global" // the whole proxy
)

// budgetMetrics are the collectors of the connection budgets.
type budgetMetrics struct {
	handshakesActive prometheus.Gauge       // sockshaper_handshakes_active, no labels
	evicted          *prometheus.CounterVec // sockshaper_handshakes_evicted_total{scope}
	limits           *prometheus.GaugeVec   // sockshaper_limits{limit}
}

// newBudgetMetrics creates the budget collectors, registers them on reg and
// pre-initialises the eviction scopes.
func newBudgetMetrics(reg prometheus.Registerer) *budgetMetrics {
	b := &budgetMetrics{
		handshakesActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "handshakes_active",
			Help:      "Connections accepted whose SOCKS handshake (greeting, login, request) has not finished.",
		}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "handshakes_evicted_total",
			Help:      "Unfinished handshakes closed to make room for a new connection, by the cap that was full (client: its address or IPv6 /64; global).",
		}, []string{"scope"}),
		limits: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "limits",
			Help:      "Connection budgets in force, by config key under limits; keys set to 0 show the value derived from the descriptor limit.",
		}, []string{"limit"}),
	}
	reg.MustRegister(b.handshakesActive, b.evicted, b.limits)
	for _, s := range []string{EvictedClient, EvictedGlobal} {
		b.evicted.WithLabelValues(s)
	}
	return b
}

// HandshakeStarted counts a connection that took a handshake slot:
// sockshaper_handshakes_active goes up by one.
func (m *Metrics) HandshakeStarted() {
	if m == nil {
		return
	}
	m.budget.handshakesActive.Inc()
}

// HandshakeEnded counts a handshake slot given back (the handshake ended, or the
// connection was evicted): sockshaper_handshakes_active goes down by one.
func (m *Metrics) HandshakeEnded() {
	if m == nil {
		return
	}
	m.budget.handshakesActive.Dec()
}

// HandshakeEvicted counts an unfinished handshake closed to make room for a new
// connection in sockshaper_handshakes_evicted_total{scope}; scope is
// [EvictedClient] or [EvictedGlobal].
func (m *Metrics) HandshakeEvicted(scope string) {
	if m == nil {
		return
	}
	m.budget.evicted.WithLabelValues(scope).Inc()
}

// Budget sets sockshaper_limits{limit=name} to value: name is a config key under
// limits, such as max_handshakes, and value the budget in force (derived when the
// config says 0).
func (m *Metrics) Budget(name string, value int) {
	if m == nil {
		return
	}
	m.budget.limits.WithLabelValues(name).Set(float64(value))
}

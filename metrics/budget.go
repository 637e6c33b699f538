package metrics

import "github.com/prometheus/client_golang/prometheus"

// Values of the scope label of sockshaper_handshakes_evicted_total: which cap was
// full when a new connection took the place of the oldest unfinished handshake.
const (
	EvictedClient = "client" // the connection's client address (IPv6: its /64)
	EvictedGlobal = "global" // the whole proxy
)

// Values of the stage label of sockshaper_handshakes_active: where a connection
// that holds a handshake slot stands. A connection that has not logged in holds
// nothing else, however many requests it sends (the PAC file, requests answered
// 407); an HTTP keep-alive connection waiting for its next request is back in
// the handshake budget (idle), whether or not it logged in before, and is the
// first to be evicted when a budget is full.
const (
	StageSilent  = "silent"  // accepted, nothing received yet
	StageTalking = "talking" // sending its handshake or request, not logged in yet
	StageIdle    = "idle"    // an HTTP keep-alive connection between requests
)

// budgetMetrics are the collectors of the connection budgets.
type budgetMetrics struct {
	handshakesActive *prometheus.GaugeVec   // sockshaper_handshakes_active{stage}
	evicted          *prometheus.CounterVec // sockshaper_handshakes_evicted_total{scope}
	limits           *prometheus.GaugeVec   // sockshaper_limits{limit}
}

// newBudgetMetrics creates the budget collectors, registers them on reg and
// pre-initialises the eviction scopes.
func newBudgetMetrics(reg prometheus.Registerer) *budgetMetrics {
	b := &budgetMetrics{
		handshakesActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "handshakes_active",
			Help: "Connections holding a handshake slot, by stage: accepted and not logged in yet (silent: nothing received; " +
				"talking: handshake or request under way, PAC and 407 answers included), or HTTP keep-alive connections between requests (idle).",
		}, []string{"stage"}),
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
	for _, s := range []string{StageSilent, StageTalking, StageIdle} {
		b.handshakesActive.WithLabelValues(s)
	}
	return b
}

// HandshakeSlots adds delta to sockshaper_handshakes_active{stage}: a connection
// took a handshake slot in stage (+1), moved it to another stage (-1 here, +1
// there), or gave it back (-1: its handshake ended, it was evicted, it ended).
func (m *Metrics) HandshakeSlots(stage string, delta int) {
	if m == nil {
		return
	}
	m.kids.slots.of(stage).Add(float64(delta))
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

package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clusterMetrics are the series of an instance that shares its limits through
// Redis (package cluster). They exist, at zero, on every instance, so that a
// dashboard aggregating instances shows alone ones too.
type clusterMetrics struct {
	peers        prometheus.Gauge         // sockshaper_cluster_peers
	exchange     *prometheus.HistogramVec // sockshaper_cluster_exchange_duration_seconds{result}
	outages      prometheus.Counter       // sockshaper_cluster_outages_total
	bad          *prometheus.CounterVec   // sockshaper_cluster_bad_reports_total{reason}
	reservations *prometheus.CounterVec   // sockshaper_cluster_session_reservations_total{result}
}

// Values of the result label of sockshaper_cluster_exchange_duration_seconds.
const (
	ClusterOK     = "ok"
	ClusterFailed = "failed"
)

// Values of the reason label of sockshaper_cluster_bad_reports_total: what an
// instance found in Redis that no instance could honestly have written, and
// skipped or replaced. [ClusterBadMalformed] is a peer's report that is not a
// report (not JSON, too large) or a key of the wrong type, skipped whole;
// [ClusterBadOutOfRange] a report with a bucket out of bounds (negative
// numbers, a key too long: skipped; too many sessions: lowered), the rest
// used; [ClusterBadUsage] a usage total that is not a count, replaced by what
// the instance knew; [ClusterBadSlots] a peer's session reservation that is
// not a count, ignored.
const (
	ClusterBadMalformed  = "malformed"
	ClusterBadOutOfRange = "out_of_range"
	ClusterBadUsage      = "usage"
	ClusterBadSlots      = "slots"
)

// Values of the result label of sockshaper_cluster_session_reservations_total:
// a session slot reserved in Redis ([ClusterReserved]) or refused there because
// the user holds max_sessions_per_user across the instances
// ([ClusterReserveRefused]); or, with Redis unreachable or slow, decided on this
// instance's part of the cap ([ClusterLocalReserved], [ClusterLocalRefused]).
const (
	ClusterReserved       = "reserved"
	ClusterReserveRefused = "refused"
	ClusterLocalReserved  = "local_reserved"
	ClusterLocalRefused   = "local_refused"
)

func newClusterMetrics(reg prometheus.Registerer) *clusterMetrics {
	c := &clusterMetrics{
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "cluster_peers",
			Help:      "Live instances sharing limits through Redis, this one included, as of the last exchange that worked; 1 without a cluster.",
		}),
		exchange: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "cluster_exchange_duration_seconds",
			Help:      "Round trips of the report exchange with Redis (one pipeline and one read every 250 ms), by result (ok, failed).",
			Buckets:   []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25},
		}, []string{"result"}),
		outages: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "cluster_outages_total",
			Help:      "Times Redis became unreachable; limits and session caps then fall back to an equal part per instance last known, and to the whole of them once those instances are forgotten (10 s), until it answers again.",
		}),
		bad: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "cluster_bad_reports_total",
			Help:      "Values read from Redis that no instance could honestly have written, skipped or replaced, by reason (malformed, out_of_range, usage, slots); counted at every exchange that meets them.",
		}, []string{"reason"}),
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "cluster_session_reservations_total",
			Help:      "Session slots of max_sessions_per_user asked of Redis, by result (reserved, refused; local_reserved, local_refused: decided on this instance's part of the cap while Redis was unreachable or slow).",
		}, []string{"result"}),
	}
	c.peers.Set(1)
	reg.MustRegister(c.peers, c.exchange, c.outages, c.bad, c.reservations)
	for _, r := range []string{ClusterOK, ClusterFailed} {
		c.exchange.WithLabelValues(r)
	}
	for _, r := range []string{ClusterBadMalformed, ClusterBadOutOfRange, ClusterBadUsage, ClusterBadSlots} {
		c.bad.WithLabelValues(r)
	}
	for _, r := range []string{ClusterReserved, ClusterReserveRefused, ClusterLocalReserved, ClusterLocalRefused} {
		c.reservations.WithLabelValues(r)
	}
	return c
}

// ClusterExchange observes one report exchange with Redis.
func (m *Metrics) ClusterExchange(ok bool, d time.Duration) {
	if m == nil {
		return
	}
	r := ClusterOK
	if !ok {
		r = ClusterFailed
	}
	m.cluster.exchange.WithLabelValues(r).Observe(d.Seconds())
}

// ClusterPeers sets the number of live instances.
func (m *Metrics) ClusterPeers(n int) {
	if m == nil {
		return
	}
	m.cluster.peers.Set(float64(n))
}

// ClusterOutage counts Redis becoming unreachable.
func (m *Metrics) ClusterOutage() {
	if m == nil {
		return
	}
	m.cluster.outages.Inc()
}

// ClusterBadReport counts a value read from Redis that was skipped or replaced,
// for reason (a ClusterBad value).
func (m *Metrics) ClusterBadReport(reason string) {
	if m == nil {
		return
	}
	m.cluster.bad.WithLabelValues(reason).Inc()
}

// ClusterReservation counts a session slot asked of the cluster, by result
// (ClusterReserved, ClusterReserveRefused, ClusterLocalReserved or
// ClusterLocalRefused).
func (m *Metrics) ClusterReservation(result string) {
	if m == nil {
		return
	}
	m.cluster.reservations.WithLabelValues(result).Inc()
}

package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clusterMetrics are the series of an instance that shares its limits through
// Redis (package cluster). They exist, at zero, on every instance, so that a
// dashboard aggregating instances shows alone ones too.
type clusterMetrics struct {
	peers    prometheus.Gauge         // sockshaper_cluster_peers
	exchange *prometheus.HistogramVec // sockshaper_cluster_exchange_duration_seconds{result}
	outages  prometheus.Counter       // sockshaper_cluster_outages_total
}

// Values of the result label of sockshaper_cluster_exchange_duration_seconds.
const (
	ClusterOK     = "ok"
	ClusterFailed = "failed"
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
			Help:      "Times Redis became unreachable; limits then fall back to an equal part per instance last known until it answers again.",
		}),
	}
	c.peers.Set(1)
	reg.MustRegister(c.peers, c.exchange, c.outages)
	for _, r := range []string{ClusterOK, ClusterFailed} {
		c.exchange.WithLabelValues(r)
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

package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// tlsMetrics are the collectors of the HTTPS listener and its HTTP/2 front.
type tlsMetrics struct {
	handshakeFailures *prometheus.CounterVec // sockshaper_tls_handshake_failures_total{reason}
	certExpiry        prometheus.Gauge       // sockshaper_tls_certificate_expiry_timestamp_seconds
	certLoadFailures  prometheus.Counter     // sockshaper_tls_certificate_load_failures_total
	h2Conns           prometheus.Gauge       // sockshaper_http2_connections_active
	h2Streams         prometheus.Histogram   // sockshaper_http2_streams_per_connection

	reg        prometheus.Registerer // where certExpiry goes once a certificate is loaded
	expiryOnce sync.Once
}

// newTLSMetrics creates the TLS collectors, registers them on reg and
// pre-initialises the failure reasons.
func newTLSMetrics(reg prometheus.Registerer, reasons []string) *tlsMetrics {
	t := &tlsMetrics{
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "tls_handshake_failures_total",
			Help: "TLS handshakes with clients that failed, by reason (timeout, client_closed, not_tls, protocol_version, " +
				"no_shared_cipher, client_rejected: the client refused the certificate, no_client_cert, bad_client_cert, other).",
		}, []string{"reason"}),
		certExpiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "tls_certificate_expiry_timestamp_seconds",
			Help:      "Unix time when the HTTPS listener's certificate in use expires (its NotAfter); absent without tls.listen.",
		}),
		certLoadFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "tls_certificate_load_failures_total",
			Help:      "Loads of tls.cert_file and tls.key_file that failed (at a reload or a change on disk); the certificate in use stayed.",
		}),
		h2Conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "http2_connections_active",
			Help:      "HTTP/2 connections to the HTTPS listener open now; their tunnels and requests count in sessions_active{front=\"http2\"}.",
		}),
		h2Streams: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "http2_streams_per_connection",
			Help:      "Streams (tunnels and requests) an HTTP/2 connection carried in its life, observed when it closes.",
			Buckets:   []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000},
		}),
	}
	t.reg = reg
	reg.MustRegister(t.handshakeFailures, t.certLoadFailures, t.h2Conns, t.h2Streams)
	for _, r := range reasons {
		t.handshakeFailures.WithLabelValues(r)
	}
	return t
}

// TLSHandshakeFailed counts a failed TLS handshake with a client by reason.
func (m *Metrics) TLSHandshakeFailed(reason string) {
	if m == nil {
		return
	}
	m.tls.handshakeFailures.WithLabelValues(reason).Inc()
}

// TLSCertificateLoaded sets the expiry gauge to the certificate now in use.
// The gauge is registered with the first certificate, so that a daemon
// without tls.listen exposes none.
func (m *Metrics) TLSCertificateLoaded(notAfter time.Time) {
	if m == nil {
		return
	}
	m.tls.expiryOnce.Do(func() { m.tls.reg.MustRegister(m.tls.certExpiry) })
	m.tls.certExpiry.Set(float64(notAfter.UnixNano()) / 1e9)
}

// TLSCertificateLoadFailed counts a certificate load that failed.
func (m *Metrics) TLSCertificateLoadFailed() {
	if m == nil {
		return
	}
	m.tls.certLoadFailures.Inc()
}

// HTTP2Conn adds delta (+1, -1) to the HTTP/2 connections open; a connection
// that closes (delta -1) reports how many streams it carried.
func (m *Metrics) HTTP2Conn(delta, streams int) {
	if m == nil {
		return
	}
	m.tls.h2Conns.Add(float64(delta))
	if delta < 0 {
		m.tls.h2Streams.Observe(float64(streams))
	}
}

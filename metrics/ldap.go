package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Values of the operation label of sockshaper_ldap_request_duration_seconds
// (proxy/auth's DirectoryOperations, the same list): a new connection (TCP, TLS,
// the service account's bind), a search, a bind as a user.
const (
	LDAPConnect = "connect"
	LDAPSearch  = "search"
	LDAPBind    = "bind"
)

// LDAPOperations lists the values of the operation label.
func LDAPOperations() []string { return []string{LDAPConnect, LDAPSearch, LDAPBind} }

// Values of the kind label of sockshaper_ldap_errors_total (proxy/auth's
// DirectoryErrorKinds): no connection, no answer in time, a failed TLS handshake,
// an error the directory answered with.
const (
	LDAPUnreachable = "unreachable"
	LDAPTimeout     = "timeout"
	LDAPTLS         = "tls"
	LDAPOther       = "other"
)

// LDAPErrorKinds lists the values of the kind label.
func LDAPErrorKinds() []string { return []string{LDAPUnreachable, LDAPTimeout, LDAPTLS, LDAPOther} }

// ldapMetrics are the collectors of the directory login.
type ldapMetrics struct {
	duration    *prometheus.HistogramVec // sockshaper_ldap_request_duration_seconds{operation}
	connections prometheus.Gauge         // sockshaper_ldap_connections, no labels
	errors      *prometheus.CounterVec   // sockshaper_ldap_errors_total{kind}
}

// newLDAPMetrics creates the directory collectors, registers them on reg and
// pre-initialises their label values, so a proxy without a directory shows zeros.
func newLDAPMetrics(reg prometheus.Registerer) *ldapMetrics {
	l := &ldapMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "ldap_request_duration_seconds",
			Help:      "Time the directory took to answer, by operation (connect: TCP, TLS and the service account's bind; search; bind: a user's bind). Requests that failed without an answer are in sockshaper_ldap_errors_total.",
			Buckets:   latencyBuckets(),
		}, []string{"operation"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "ldap_connections",
			Help:      "Connections to the directory open now, idle and in use.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "ldap_errors_total",
			Help:      "Directory requests that failed, by kind (unreachable, timeout, tls, other: an error the directory answered with). A login that meets one is answered unavailable, not failed.",
		}, []string{"kind"}),
	}
	reg.MustRegister(l.duration, l.connections, l.errors)
	for _, op := range LDAPOperations() {
		l.duration.WithLabelValues(op)
	}
	for _, k := range LDAPErrorKinds() {
		l.errors.WithLabelValues(k)
	}
	return l
}

// DirectoryRequest observes a request the directory answered in
// sockshaper_ldap_request_duration_seconds{operation}.
func (m *Metrics) DirectoryRequest(operation string, d time.Duration) {
	if m == nil {
		return
	}
	m.ldap.duration.WithLabelValues(operation).Observe(d.Seconds())
}

// DirectoryError counts a failed directory request in
// sockshaper_ldap_errors_total{kind}.
func (m *Metrics) DirectoryError(kind string) {
	if m == nil {
		return
	}
	m.ldap.errors.WithLabelValues(kind).Inc()
}

// DirectoryConnOpened counts a connection to the directory opened:
// sockshaper_ldap_connections goes up by one.
func (m *Metrics) DirectoryConnOpened() {
	if m == nil {
		return
	}
	m.ldap.connections.Inc()
}

// DirectoryConnClosed counts a connection to the directory closed.
func (m *Metrics) DirectoryConnClosed() {
	if m == nil {
		return
	}
	m.ldap.connections.Dec()
}

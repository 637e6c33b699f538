// Package metrics holds every Prometheus collector of sockshaper and the admin HTTP
// handler that exports them.
//
// [New] registers the collectors on a registry the caller passes in (never the
// global one), so tests and the daemon each own theirs. The proxy reports what its
// sessions do through the methods of [Metrics]; label values come from the caller and
// are limited to bounded sets: fronts, commands, results, app classes, directions,
// transports, reasons and, only when an operator opts in, user names from the
// config. Client addresses and destinations never become labels.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// namespace prefixes every metric name of sockshaper.
const namespace = "sockshaper"

// Options selects what [New] exports. The zero value exports no per-user series and
// a users_active of 0.
type Options struct {
	// PerUser exports sockshaper_user_transferred_bytes_total with a user label.
	// It is off unless an operator opts in: the series count grows with users.
	PerUser bool
	// PerUserMaxUsers caps the distinct users that get per-user series. Zero or less
	// means [DefaultPerUserMaxUsers]. Bytes of users beyond the cap are added to
	// sockshaper_user_series_dropped_bytes_total instead.
	PerUserMaxUsers int
	// UsersActive returns the number of users with at least one live session. It
	// feeds sockshaper_users_active at every scrape, so it must be cheap and safe for
	// concurrent use. Nil exports 0.
	UsersActive func() float64
	// Apps are the app class names known at start, including the classifier's name
	// for unclassified traffic. Series with an app label are pre-initialised to zero
	// for each of them, so dashboards show zeros instead of "no data". Nil
	// pre-initialises only the series without an app label.
	Apps []string
	// QuotaGroups are the groups with a quota, whose
	// sockshaper_quota_exceeded_total series are pre-initialised to zero.
	QuotaGroups []string
	// QuotaUsage lists users' quota use for sockshaper_user_quota_used_bytes and
	// sockshaper_user_quota_limit_bytes, read at each scrape while per-user
	// export is on. Nil exports none.
	QuotaUsage QuotaUsageFunc
	// TLSFailureReasons are the values of the reason label of
	// sockshaper_tls_handshake_failures_total, pre-initialised to zero
	// (tlscert.FailureReasons; metrics does not import the proxy).
	TLSFailureReasons []string
}

// Metrics is the set of sockshaper's collectors. Its methods are safe for concurrent
// use and never block on I/O. A nil *Metrics records nothing, so callers may leave
// metrics out (in tests, for example).
type Metrics struct {
	sessionsActive    *prometheus.GaugeVec     // sockshaper_sessions_active{front, command, app}
	sessionsTotal     *prometheus.CounterVec   // sockshaper_sessions_total{front, command, app, result}
	authAttempts      *prometheus.CounterVec   // sockshaper_auth_attempts_total{result}
	transferred       *prometheus.CounterVec   // sockshaper_transferred_bytes_total{app, direction, transport}
	throttled         *prometheus.CounterVec   // sockshaper_throttled_seconds_total{app, direction}
	inboundRefused    *prometheus.CounterVec   // sockshaper_inbound_refused_total{reason}
	dialDuration      *prometheus.HistogramVec // sockshaper_dial_duration_seconds{result}
	handshakeDuration prometheus.Histogram     // sockshaper_handshake_duration_seconds, no labels
	sessionDuration   *prometheus.HistogramVec // sockshaper_session_duration_seconds{app}
	usersActive       prometheus.GaugeFunc     // sockshaper_users_active, no labels
	configReloads     *prometheus.CounterVec   // sockshaper_config_reloads_total{result}
	lastReloadSuccess prometheus.Gauge         // sockshaper_config_last_reload_success_timestamp_seconds, no labels
	perUser           *perUser                 // sockshaper_user_transferred_bytes_total{user, app, direction}, sockshaper_user_series_dropped_bytes_total{app, direction}
	sessionsReset     *prometheus.CounterVec   // sockshaper_sessions_reset_total{reason}
	budget            *budgetMetrics           // sockshaper_handshakes_active, sockshaper_handshakes_evicted_total{scope}, sockshaper_limits{limit}
	ldap              *ldapMetrics             // sockshaper_ldap_request_duration_seconds{operation}, sockshaper_ldap_connections, sockshaper_ldap_errors_total{kind}
	quota             *quotaMetrics            // sockshaper_quota_exceeded_total{group}, sockshaper_user_quota_used_bytes{user, period}, sockshaper_user_quota_limit_bytes{user, period}
	cluster           *clusterMetrics          // sockshaper_cluster_peers, sockshaper_cluster_exchange_duration_seconds{result}, sockshaper_cluster_outages_total
	tls               *tlsMetrics              // sockshaper_tls_handshake_failures_total{reason}, sockshaper_tls_certificate_*, sockshaper_http2_*
	kids              *sessionChildren         // the children of the vectors above that every session records into
}

// New creates sockshaper's collectors, registers them on reg together with the Go
// runtime and process collectors, pre-initialises the label combinations known up
// front and returns them. It panics if any of them is already registered on reg, as
// [prometheus.Registerer.MustRegister] does: pass a fresh registry.
func New(reg prometheus.Registerer, opts Options) *Metrics {
	m := &Metrics{
		sessionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "sessions_active",
			Help:      "Sessions relaying now, by front (socks5, http; on tls.listen socks5_tls, https, http2), command and app class.",
		}, []string{"front", "command", "app"}),
		sessionsTotal: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "sessions_total",
			Help:      "Sessions ended, by front (socks5, http; on tls.listen socks5_tls, https, http2; none: the client sent nothing), command, app class and result (ok, or why the session was refused or failed).",
		}, []string{"front", "command", "app", "result"}),
		authAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "auth_attempts_total",
			Help:      "Logins, by result: passwords (ok, failed, throttled, busy, unavailable, abandoned; only failed counts toward the login throttle) and Kerberos tickets (kerberos_ok, or kerberos_ and why the ticket was refused).",
		}, []string{"result"}),
		transferred: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "transferred_bytes_total",
			Help:      "Payload bytes relayed, by app class, direction (upload: client to destination) and transport.",
		}, []string{"app", "direction", "transport"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "throttled_seconds_total",
			Help:      "Time sessions waited on token buckets, by app class and direction.",
		}, []string{"app", "direction"}),
		inboundRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "inbound_refused_total",
			Help:      "Inbound paths refused, by reason (bind: a BIND request; udp_unsolicited: a datagram from a peer the client never sent to).",
		}, []string{"reason"}),
		dialDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "dial_duration_seconds",
			Help:      "Time to resolve and connect to a destination, by result (ok, failed).",
			Buckets:   latencyBuckets(),
		}, []string{"result"}),
		handshakeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "handshake_duration_seconds",
			Help:      "Time from accepting a connection to replying to its SOCKS request.",
			Buckets:   latencyBuckets(),
		}),
		sessionDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "session_duration_seconds",
			Help:      "Lifetime of relaying sessions, by app class.",
			Buckets:   sessionBuckets(),
		}, []string{"app"}),
		usersActive: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "users_active",
			Help:      "Users with at least one live session.",
		}, gaugeFunc(opts.UsersActive)),
		configReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "config_reloads_total",
			Help:      "Config reloads, by result (success, error). On error the previous config stays in effect.",
		}, []string{"result"}),
		lastReloadSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "config_last_reload_success_timestamp_seconds",
			Help:      "Unix time of the last successful config load, the one at start included.",
		}),
		perUser: newPerUser(opts.PerUser, opts.PerUserMaxUsers),
		sessionsReset: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "sessions_reset_total",
			Help:      "Sessions the proxy cut with a TCP reset, by reason (shutdown: still running when the drain ended; revoked: user removed at a reload; stalled: a peer took no byte for the idle timeout; error: a socket error on either side).",
		}, []string{"reason"}),
	}
	reg.MustRegister(
		m.sessionsActive, m.sessionsTotal, m.authAttempts, m.transferred,
		m.throttled, m.inboundRefused, m.dialDuration, m.handshakeDuration,
		m.sessionDuration, m.usersActive, m.configReloads, m.lastReloadSuccess,
		m.perUser.bytes, m.perUser.dropped, m.sessionsReset,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.preinit(opts.Apps)
	m.budget = newBudgetMetrics(reg)
	m.kids = newSessionChildren(m) // after budget, whose vector it caches too
	m.ldap = newLDAPMetrics(reg)
	m.quota = newQuotaMetrics(reg, opts, m.perUser)
	m.cluster = newClusterMetrics(reg)
	m.tls = newTLSMetrics(reg, opts.TLSFailureReasons)
	return m
}

// latencyBuckets returns the bucket bounds for dials and handshakes: 1 ms (a host on
// the campus network) to 10 s (the default dial and handshake timeouts, so a wait cut
// by the timeout still lands in the last finite bucket), in steps of about 2.5.
func latencyBuckets() []float64 {
	return []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// sessionBuckets returns the bucket bounds for session lifetimes: 100 ms (one short
// web request) to 4 h (a lecture-long call), at durations people read at a glance.
func sessionBuckets() []float64 {
	return []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400}
}

// gaugeFunc returns f, or a function returning 0 when f is nil.
func gaugeFunc(f func() float64) func() float64 {
	if f == nil {
		return func() float64 { return 0 }
	}
	return f
}

package metrics

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newTestMetrics returns Metrics registered on a fresh registry.
func newTestMetrics(t *testing.T, opts Options) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return New(reg, opts), reg
}

// exercise calls every recording method once.
func exercise(m *Metrics) {
	m.SessionOpened(FrontSOCKS5, CommandConnect, "skype")
	m.SessionOpened(FrontSOCKS5, CommandConnect, "skype")
	m.SessionClosed(FrontSOCKS5, CommandConnect, "skype", ResultOK, 3*time.Second)
	m.SessionOpened(FrontHTTP, CommandRequest, "other")
	m.SessionRejected(FrontNone, CommandNone, "other", ResultLimitReached)
	m.AuthAttempt(AuthFailed)
	m.Transferred("alice", "skype", DirectionDownload, TransportUDP, 1500)
	m.Throttled("skype", DirectionUpload, 250*time.Millisecond)
	m.InboundRefused(InboundBind)
	m.Dialed(DialOK, 20*time.Millisecond)
	m.Handshake(5 * time.Millisecond)
	m.ConfigLoaded(time.Unix(1700000000, 0))
	m.ConfigReloaded(false, time.Unix(1700000100, 0))
	m.HandshakeSlots(StageSilent, 1)
	m.HandshakeSlots(StageSilent, 1)
	m.HandshakeSlots(StageSilent, -1)
	m.HandshakeSlots(StageIdle, 1)
	m.HandshakeEvicted(EvictedClient)
	m.Budget("max_handshakes", 2468)
	m.DirectoryConnOpened()
	m.DirectoryRequest(LDAPSearch, 3*time.Millisecond)
	m.DirectoryError(LDAPTimeout)
	m.QuotaExceeded("students")
	m.TLSHandshakeFailed("timeout")
	m.TLSCertificateLoaded(time.Unix(1800000000, 0))
	m.TLSCertificateLoadFailed()
	m.HTTP2Conn(1, 0)
	m.HTTP2Conn(1, 0)
	m.HTTP2Conn(-1, 7)
}

// quotaUsage is a QuotaUsageFunc of three users, the anonymous one among them.
func quotaUsage(f func(user, period string, used, limit int64) bool) {
	_ = f("alice", "daily", 500, 1000) && f("alice", "monthly", 500, 10000) &&
		f("bob", "daily", 900, 1000) && f("", "monthly", 1, 10)
}

// designMetric is one exported metric as designed: name, type and labels.
type designMetric struct {
	name   string
	typ    dto.MetricType
	labels []string // sorted
}

// designTable is the contract of every sockshaper_ metric: this table is its
// source of truth (docs/monitoring.md and docs/deployment.md
// describe the series to operators). A metric added to the code and not here
// fails TestDesignMetricsPresent, and so does one here that the code drops.
func designTable() []designMetric {
	c, g, h := dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_HISTOGRAM
	return []designMetric{
		{"sockshaper_sessions_active", g, []string{"app", "command", "front"}},
		{"sockshaper_sessions_total", c, []string{"app", "command", "front", "result"}},
		{"sockshaper_auth_attempts_total", c, []string{"result"}},
		{"sockshaper_transferred_bytes_total", c, []string{"app", "direction", "transport"}},
		{"sockshaper_throttled_seconds_total", c, []string{"app", "direction"}},
		{"sockshaper_inbound_refused_total", c, []string{"reason"}},
		{"sockshaper_dial_duration_seconds", h, []string{"result"}},
		{"sockshaper_handshake_duration_seconds", h, nil},
		{"sockshaper_session_duration_seconds", h, []string{"app"}},
		{"sockshaper_users_active", g, nil},
		{"sockshaper_config_reloads_total", c, []string{"result"}},
		{"sockshaper_config_last_reload_success_timestamp_seconds", g, nil},
		{"sockshaper_user_transferred_bytes_total", c, []string{"app", "direction", "user"}},
		{"sockshaper_user_series_dropped_bytes_total", c, []string{"app", "direction"}},
		{"sockshaper_sessions_reset_total", c, []string{"reason"}},
		{"sockshaper_cluster_peers", g, nil},
		{"sockshaper_cluster_exchange_duration_seconds", h, []string{"result"}},
		{"sockshaper_cluster_outages_total", c, nil},
		{"sockshaper_cluster_bad_reports_total", c, []string{"reason"}},
		{"sockshaper_cluster_session_reservations_total", c, []string{"result"}},
		{"sockshaper_handshakes_active", g, []string{"stage"}},
		{"sockshaper_handshakes_evicted_total", c, []string{"scope"}},
		{"sockshaper_limits", g, []string{"limit"}},
		{"sockshaper_ldap_request_duration_seconds", h, []string{"operation"}},
		{"sockshaper_ldap_connections", g, nil},
		{"sockshaper_ldap_errors_total", c, []string{"kind"}},
		{"sockshaper_quota_exceeded_total", c, []string{"group"}},
		{"sockshaper_tls_handshake_failures_total", c, []string{"reason"}},
		{"sockshaper_tls_certificate_expiry_timestamp_seconds", g, nil},
		{"sockshaper_tls_certificate_load_failures_total", c, nil},
		{"sockshaper_http2_connections_active", g, nil},
		{"sockshaper_http2_streams_per_connection", h, nil},
		{"sockshaper_user_quota_used_bytes", g, []string{"period", "user"}},
		{"sockshaper_user_quota_limit_bytes", g, []string{"period", "user"}},
	}
}

// gather returns reg's metric families by name.
func gather(t *testing.T, reg prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]*dto.MetricFamily, len(mfs))
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

func TestDesignMetricsPresent(t *testing.T) {
	m, reg := newTestMetrics(t, Options{PerUser: true, PerUserMaxUsers: 1, QuotaUsage: quotaUsage})
	exercise(m)
	m.Transferred("bob", "web", DirectionUpload, TransportTCP, 10) // beyond the cap
	families := gather(t, reg)
	for _, want := range designTable() {
		mf, ok := families[want.name]
		if !ok {
			t.Errorf("%s: not exported", want.name)
			continue
		}
		if mf.GetType() != want.typ {
			t.Errorf("%s: type %v, want %v", want.name, mf.GetType(), want.typ)
		}
		if mf.GetHelp() == "" {
			t.Errorf("%s: no help text", want.name)
		}
		for _, metric := range mf.GetMetric() {
			var got []string
			for _, lp := range metric.GetLabel() {
				got = append(got, lp.GetName())
			}
			slices.Sort(got)
			if !slices.Equal(got, want.labels) {
				t.Errorf("%s: labels %v, want %v", want.name, got, want.labels)
			}
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := families[name]; !ok {
			t.Errorf("%s: Go or process collector not registered", name)
		}
	}
	for name := range families {
		if strings.HasPrefix(name, namespace+"_") && !slices.ContainsFunc(designTable(), func(d designMetric) bool { return d.name == name }) {
			t.Errorf("%s: exported but not in designTable", name)
		}
	}
}

func TestRecordedValues(t *testing.T) {
	m, reg := newTestMetrics(t, Options{UsersActive: func() float64 { return 7 }})
	exercise(m)
	checks := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"sessions_active", m.sessionsActive.WithLabelValues(FrontSOCKS5, CommandConnect, "skype"), 1},
		{"sessions_active http", m.sessionsActive.WithLabelValues(FrontHTTP, CommandRequest, "other"), 1},
		{"sessions_active http connect", m.sessionsActive.WithLabelValues(FrontHTTP, CommandConnect, "skype"), 0},
		{"sessions_total ok", m.sessionsTotal.WithLabelValues(FrontSOCKS5, CommandConnect, "skype", ResultOK), 1},
		{"sessions_total limit", m.sessionsTotal.WithLabelValues(FrontNone, CommandNone, "other", ResultLimitReached), 1},
		{"auth_attempts", m.authAttempts.WithLabelValues(AuthFailed), 1},
		{"transferred", m.transferred.WithLabelValues("skype", DirectionDownload, TransportUDP), 1500},
		{"throttled", m.throttled.WithLabelValues("skype", DirectionUpload), 0.25},
		{"inbound_refused", m.inboundRefused.WithLabelValues(InboundBind), 1},
		{"users_active", m.usersActive, 7},
		{"reloads error", m.configReloads.WithLabelValues(reloadError), 1},
		{"reloads success", m.configReloads.WithLabelValues(reloadSuccess), 0},
		{"last reload", m.lastReloadSuccess, 1700000000},
		{"handshakes_active silent", m.budget.handshakesActive.WithLabelValues(StageSilent), 1},
		{"handshakes_active idle", m.budget.handshakesActive.WithLabelValues(StageIdle), 1},
		{"handshakes_active talking", m.budget.handshakesActive.WithLabelValues(StageTalking), 0},
		{"evicted client", m.budget.evicted.WithLabelValues(EvictedClient), 1},
		{"evicted global", m.budget.evicted.WithLabelValues(EvictedGlobal), 0},
		{"limits", m.budget.limits.WithLabelValues("max_handshakes"), 2468},
		{"ldap_connections", m.ldap.connections, 1},
		{"ldap_errors timeout", m.ldap.errors.WithLabelValues(LDAPTimeout), 1},
		{"ldap_errors tls", m.ldap.errors.WithLabelValues(LDAPTLS), 0},
	}
	for _, c := range checks {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	m.ConfigReloaded(true, time.Unix(1700000200, 500_000_000))
	if got := testutil.ToFloat64(m.lastReloadSuccess); got != 1700000200.5 {
		t.Errorf("last reload after success = %v, want 1700000200.5", got)
	}
	if n := testutil.CollectAndCount(m.perUser.bytes); n != 0 {
		t.Errorf("per-user series with PerUser off: %d, want 0", n)
	}
	if n, err := testutil.GatherAndCount(reg, "sockshaper_session_duration_seconds"); err != nil || n != 1 {
		t.Errorf("session_duration_seconds series = %d, %v; want 1", n, err)
	}
}

func TestPreinitialisedZeros(t *testing.T) {
	m, _ := newTestMetrics(t, Options{Apps: []string{"skype", "other"}, TLSFailureReasons: []string{"a", "b", "c"}})
	counts := map[string]struct {
		c    prometheus.Collector
		want int
	}{
		"auth_attempts":   {m.authAttempts, len(AuthResults())},
		"inbound_refused": {m.inboundRefused, 2},
		"dial_duration":   {m.dialDuration, 2},
		"config_reloads":  {m.configReloads, 2},
		// Per app: socks5 and socks5_tls with 4 commands, http and https with
		// 3, http2 with 3, none with 1; only sessions with a command open.
		"sessions_total":  {m.sessionsTotal, 2 * (4 + 3 + 4 + 3 + 3 + 1) * len(results())},
		"sessions_active": {m.sessionsActive, 2 * (3 + 2 + 3 + 2 + 2)},
		"tls_failures":    {m.tls.handshakeFailures, 3},
		"transferred":     {m.transferred, 2 * 2 * 2},
		"throttled":       {m.throttled, 2 * 2},
		"dropped":         {m.perUser.dropped, 2 * 2},
		"evicted":         {m.budget.evicted, 2},
		"ldap_duration":   {m.ldap.duration, len(LDAPOperations())},
		"ldap_errors":     {m.ldap.errors, len(LDAPErrorKinds())},
	}
	for name, c := range counts {
		if got := testutil.CollectAndCount(c.c); got != c.want {
			t.Errorf("%s: %d series, want %d", name, got, c.want)
		}
	}
}

func TestLint(t *testing.T) {
	m, reg := newTestMetrics(t, Options{PerUser: true, Apps: []string{"skype"}})
	exercise(m)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatalf("GatherAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

func TestIgnoresNonPositive(t *testing.T) {
	m, _ := newTestMetrics(t, Options{})
	m.Transferred("bob", "web", DirectionUpload, TransportTCP, 0)
	m.Transferred("bob", "web", DirectionUpload, TransportTCP, -5)
	m.Throttled("web", DirectionUpload, -time.Second)
	if n := testutil.CollectAndCount(m.transferred) + testutil.CollectAndCount(m.throttled); n != 0 {
		t.Errorf("series after non-positive values: %d, want 0", n)
	}
}

func TestNilMetricsRecordsNothing(t *testing.T) {
	var m *Metrics
	exercise(m) // must not panic
	m.SetPerUser(true, 1)
}

func TestNewPanicsOnSecondRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, Options{})
	defer func() {
		if recover() == nil {
			t.Error("second New on one registry did not panic")
		}
	}()
	New(reg, Options{})
}

func TestSessionReclassifiedMovesTheGauge(t *testing.T) {
	m, _ := newTestMetrics(t, Options{Apps: []string{"skype", "other"}})
	active := func(app string) float64 {
		return testutil.ToFloat64(m.sessionsActive.WithLabelValues(FrontSOCKS5, CommandUDPAssociate, app))
	}
	m.SessionOpened(FrontSOCKS5, CommandUDPAssociate, "other")
	m.SessionOpened(FrontSOCKS5, CommandUDPAssociate, "other")
	m.SessionReclassified(FrontSOCKS5, CommandUDPAssociate, "other", "skype")
	if o, s := active("other"), active("skype"); o != 1 || s != 1 {
		t.Fatalf("after one of two sessions became skype: other %v, skype %v; want 1, 1", o, s)
	}
	m.SessionReclassified(FrontSOCKS5, CommandUDPAssociate, "skype", "skype") // no move
	m.SessionClosed(FrontSOCKS5, CommandUDPAssociate, "skype", ResultOK, time.Second)
	m.SessionClosed(FrontSOCKS5, CommandUDPAssociate, "other", ResultOK, time.Second)
	if o, s := active("other"), active("skype"); o != 0 || s != 0 {
		t.Errorf("after both closed: other %v, skype %v; want 0, 0", o, s)
	}
	if got := testutil.ToFloat64(m.sessionsTotal.WithLabelValues(FrontSOCKS5, CommandUDPAssociate, "skype", ResultOK)); got != 1 {
		t.Errorf("skype sessions_total = %v, want 1", got)
	}
	var nilM *Metrics
	nilM.SessionReclassified(FrontSOCKS5, CommandUDPAssociate, "other", "skype") // must not panic
}

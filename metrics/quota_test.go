package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestQuotaExceeded(t *testing.T) {
	m, _ := newTestMetrics(t, Options{QuotaGroups: []string{"students", "staff"}})
	if n := testutil.CollectAndCount(m.quota.exceeded); n != 2 {
		t.Errorf("pre-initialised groups: %d series, want 2", n)
	}
	m.QuotaExceeded("students")
	m.QuotaExceeded("students")
	m.InitQuotaGroups([]string{"guests", "staff"})
	if got := testutil.ToFloat64(m.quota.exceeded.WithLabelValues("students")); got != 2 {
		t.Errorf("students = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.quota.exceeded); n != 3 {
		t.Errorf("after a reload added guests: %d series, want 3", n)
	}
	var nilM *Metrics
	nilM.QuotaExceeded("x")
	nilM.InitQuotaGroups([]string{"x"})
}

// TestUserQuotaSeries checks the per-user quota gauges: only with per-user
// series on, the fullest users first up to the cap, the anonymous user named.
func TestUserQuotaSeries(t *testing.T) {
	m, reg := newTestMetrics(t, Options{QuotaUsage: quotaUsage})
	if n, _ := testutil.GatherAndCount(reg, "sockshaper_user_quota_used_bytes"); n != 0 {
		t.Errorf("with per-user series off: %d series, want 0", n)
	}
	m.SetPerUser(true, 2)
	want := `
# HELP sockshaper_user_quota_used_bytes Bytes a user used of their allowance in the current period (daily, monthly), both directions. Exported only with metrics.per_user, for at most metrics.per_user_max_users users, the fullest first.
# TYPE sockshaper_user_quota_used_bytes gauge
sockshaper_user_quota_used_bytes{period="daily",user="alice"} 500
sockshaper_user_quota_used_bytes{period="daily",user="bob"} 900
sockshaper_user_quota_used_bytes{period="monthly",user="alice"} 500
`
	// bob is at 90%, alice at 50%, the anonymous user at 10%: the cap of 2 keeps bob and alice.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sockshaper_user_quota_used_bytes"); err != nil {
		t.Error(err)
	}
	m.SetPerUser(true, 10)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP sockshaper_user_quota_limit_bytes A user's allowance per period (daily, monthly) in bytes. Exported with sockshaper_user_quota_used_bytes.
# TYPE sockshaper_user_quota_limit_bytes gauge
sockshaper_user_quota_limit_bytes{period="daily",user="alice"} 1000
sockshaper_user_quota_limit_bytes{period="daily",user="bob"} 1000
sockshaper_user_quota_limit_bytes{period="monthly",user="-anonymous-"} 10
sockshaper_user_quota_limit_bytes{period="monthly",user="alice"} 10000
`), "sockshaper_user_quota_limit_bytes"); err != nil {
		t.Error(err)
	}
}

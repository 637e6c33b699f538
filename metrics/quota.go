package metrics

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
)

// QuotaUsageFunc lists users' quota use: it calls f for each user with an
// allowance and each period that has one (period "daily" or "monthly"), with the
// bytes used and allowed, until f returns false. usage.Store's QuotaUsage is one.
type QuotaUsageFunc func(f func(user, period string, used, limit int64) bool)

// quotaMetrics are the collectors of quotas.
type quotaMetrics struct {
	exceeded *prometheus.CounterVec // sockshaper_quota_exceeded_total{group}
	users    *quotaCollector        // sockshaper_user_quota_used_bytes{user, period}, sockshaper_user_quota_limit_bytes{user, period}
}

func newQuotaMetrics(reg prometheus.Registerer, opts Options, p *perUser) *quotaMetrics {
	q := &quotaMetrics{
		exceeded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace,
			Name:      "quota_exceeded_total",
			Help:      "Users who used up a daily or monthly allowance, by group: from then until the period ends they are shaped to the quota's over_rate, or refused when it is 0.",
		}, []string{"group"}),
		users: &quotaCollector{
			used: prometheus.NewDesc(namespace+"_user_quota_used_bytes",
				"Bytes a user used of their allowance in the current period (daily, monthly), both directions. Exported only with metrics.per_user, for at most metrics.per_user_max_users users, the fullest first.",
				[]string{"user", "period"}, nil),
			limit: prometheus.NewDesc(namespace+"_user_quota_limit_bytes",
				"A user's allowance per period (daily, monthly) in bytes. Exported with sockshaper_user_quota_used_bytes.",
				[]string{"user", "period"}, nil),
			source:  opts.QuotaUsage,
			perUser: p,
		},
	}
	reg.MustRegister(q.exceeded, q.users)
	for _, g := range opts.QuotaGroups {
		q.exceeded.WithLabelValues(g)
	}
	return q
}

// quotaCollector reads users' quota use at each scrape, so that counting bytes
// costs the metrics nothing.
type quotaCollector struct {
	used, limit *prometheus.Desc
	source      QuotaUsageFunc
	perUser     *perUser // whether per-user series are on, and their cap
}

// Describe sends the two descriptors.
func (c *quotaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.used
	ch <- c.limit
}

// quotaRow is one user's use of one period's allowance.
type quotaRow struct {
	user, period string
	used, limit  int64
}

// Collect sends the used and limit series of the users closest to (or over)
// an allowance, at most the per-user cap of them, while per-user series are on.
func (c *quotaCollector) Collect(ch chan<- prometheus.Metric) {
	on, maxUsers := c.perUser.settings()
	if !on || c.source == nil {
		return
	}
	var rows []quotaRow
	fullest := map[string]float64{}
	c.source(func(user, period string, used, limit int64) bool {
		if user == "" {
			user = AnonymousUser
		}
		rows = append(rows, quotaRow{user, period, used, limit})
		fullest[user] = max(fullest[user], float64(used)/float64(max(limit, 1)))
		return true
	})
	users := make([]string, 0, len(fullest))
	for u := range fullest {
		users = append(users, u)
	}
	slices.SortFunc(users, func(a, b string) int { return cmp.Or(cmp.Compare(fullest[b], fullest[a]), cmp.Compare(a, b)) })
	keep := map[string]bool{}
	for _, u := range users[:min(len(users), maxUsers)] {
		keep[u] = true
	}
	for _, r := range rows {
		if keep[r.user] {
			ch <- prometheus.MustNewConstMetric(c.used, prometheus.GaugeValue, float64(r.used), r.user, r.period)
			ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(r.limit), r.user, r.period)
		}
	}
}

// QuotaExceeded counts a user of group who used up an allowance in
// sockshaper_quota_exceeded_total{group}.
func (m *Metrics) QuotaExceeded(group string) {
	if m == nil {
		return
	}
	m.quota.exceeded.WithLabelValues(group).Inc()
}

// InitQuotaGroups creates the zero series of groups with a quota that a reload
// added, as [New] does for [Options.QuotaGroups].
func (m *Metrics) InitQuotaGroups(groups []string) {
	if m == nil {
		return
	}
	for _, g := range groups {
		m.quota.exceeded.WithLabelValues(g)
	}
}

package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// UsageState is how keeping usage in state_dir goes, as the metrics export
// it: usage.Store's StateHealth, which the daemon adapts.
type UsageState struct {
	// WriteFailures counts the writes of the usage file that failed since the
	// start.
	WriteFailures uint64
	// LastWrite is when the usage file was last written (or the start found
	// state_dir took files).
	LastWrite time.Time
	// EntriesSetAside and FilesSetAside count what of the usage file could not
	// be read at start and was set aside: users' entries, whole files.
	EntriesSetAside, FilesSetAside uint64
}

// usageStateCollector reads the usage state at each scrape:
//
//	sockshaper_usage_state_write_failures_total, no labels
//	sockshaper_usage_state_last_write_success_timestamp_seconds, no labels
//	sockshaper_usage_state_set_aside_total{what}
type usageStateCollector struct {
	failures, lastWrite, setAside *prometheus.Desc
	state                         func() UsageState
}

// NewUsageStateCollector returns the collector of the usage state that state
// reports, read at each scrape: register it on the daemon's registry when
// usage is kept in a state_dir. state must be cheap and safe for concurrent
// use, and must not wait on a write of the usage file.
func NewUsageStateCollector(state func() UsageState) prometheus.Collector {
	return &usageStateCollector{
		failures: prometheus.NewDesc(namespace+"_usage_state_write_failures_total",
			"Writes of the usage file in state_dir that failed (a full disk, a read-only folder): counting goes on in memory and the write is tried again every 5 s, but a restart would lose what was counted since the last write.",
			nil, nil),
		lastWrite: prometheus.NewDesc(namespace+"_usage_state_last_write_success_timestamp_seconds",
			"Unix time of the last successful write of the usage file in state_dir, or of the start, which checks that the folder takes files. Usage is written every 5 s while it changes.",
			nil, nil),
		setAside: prometheus.NewDesc(namespace+"_usage_state_set_aside_total",
			"What of the usage file could not be read at start and was set aside, by what: entry (a user's entry, kept in usage.json.bad-TIME; the user counts from zero), file (the whole file, moved to usage.json.corrupt-TIME; every user counts from zero).",
			[]string{"what"}, nil),
		state: state,
	}
}

// Describe sends the three descriptors.
func (c *usageStateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.failures
	ch <- c.lastWrite
	ch <- c.setAside
}

// Collect sends the usage state read now.
func (c *usageStateCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.state()
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(st.WriteFailures))
	ch <- prometheus.MustNewConstMetric(c.lastWrite, prometheus.GaugeValue, float64(st.LastWrite.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(c.setAside, prometheus.CounterValue, float64(st.EntriesSetAside), "entry")
	ch <- prometheus.MustNewConstMetric(c.setAside, prometheus.CounterValue, float64(st.FilesSetAside), "file")
}

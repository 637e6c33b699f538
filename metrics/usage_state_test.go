package metrics

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestUsageStateCollector reads the usage state at each scrape: counters and
// the last write's time as Unix seconds.
func TestUsageStateCollector(t *testing.T) {
	var st atomic.Pointer[UsageState]
	st.Store(&UsageState{LastWrite: time.Unix(1700000000, 500_000_000)})
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewUsageStateCollector(func() UsageState { return *st.Load() }))
	read := func(name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == name && (len(labels) == 0 || m.GetLabel()[0].GetValue() == labels[0]) {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("%s %v not gathered", name, labels)
		return 0
	}
	if v := read("sockshaper_usage_state_last_write_success_timestamp_seconds"); v != 1700000000.5 {
		t.Errorf("last write = %v", v)
	}
	st.Store(&UsageState{WriteFailures: 3, LastWrite: time.Unix(1700000000, 0), EntriesSetAside: 2, FilesSetAside: 1})
	if v := read("sockshaper_usage_state_write_failures_total"); v != 3 {
		t.Errorf("write failures = %v, want 3", v)
	}
	if e, f := read("sockshaper_usage_state_set_aside_total", "entry"), read("sockshaper_usage_state_set_aside_total", "file"); e != 2 || f != 1 {
		t.Errorf("set aside: entry %v file %v, want 2 and 1", e, f)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) != 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestClusterSeries: the cluster's bad-report and reservation series exist at
// zero for every label value, and count what is recorded.
func TestClusterSeries(t *testing.T) {
	m, _ := newTestMetrics(t, Options{})
	if n := testutil.CollectAndCount(m.cluster.bad); n != 4 {
		t.Errorf("bad_reports series: %d, want one per reason (4)", n)
	}
	if n := testutil.CollectAndCount(m.cluster.reservations); n != 4 {
		t.Errorf("session_reservations series: %d, want one per result (4)", n)
	}
	m.ClusterBadReport(ClusterBadUsage)
	m.ClusterBadReport(ClusterBadUsage)
	m.ClusterReservation(ClusterLocalRefused)
	if got := testutil.ToFloat64(m.cluster.bad.WithLabelValues(ClusterBadUsage)); got != 2 {
		t.Errorf("bad_reports{reason=usage} = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.cluster.reservations.WithLabelValues(ClusterLocalRefused)); got != 1 {
		t.Errorf("session_reservations{result=local_refused} = %v, want 1", got)
	}
	var nilMetrics *Metrics
	nilMetrics.ClusterBadReport(ClusterBadSlots) // a nil Metrics records nothing
	nilMetrics.ClusterReservation(ClusterReserved)
}

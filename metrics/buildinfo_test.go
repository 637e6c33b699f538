package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, Options{})
	reg.MustRegister(NewBuildInfo(BuildInfo{Version: "1.2.0", Revision: "0123abc", GoVersion: "go1.26.8"}))
	want := `
# HELP sockshaper_build_info A metric with a constant 1 labeled by the version, VCS revision and Go version sockshaper was built from.
# TYPE sockshaper_build_info gauge
sockshaper_build_info{goversion="go1.26.8",revision="0123abc",version="1.2.0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sockshaper_build_info"); err != nil {
		t.Error(err)
	}
	// A second registry gets its own: nothing global.
	other := prometheus.NewRegistry()
	other.MustRegister(NewBuildInfo(BuildInfo{Version: "2"}))
	if n, err := testutil.GatherAndCount(other, "sockshaper_build_info"); err != nil || n != 1 {
		t.Errorf("second registry: %d series, %v", n, err)
	}
}

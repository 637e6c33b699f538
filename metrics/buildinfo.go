package metrics

import "github.com/prometheus/client_golang/prometheus"

// BuildInfo names the running binary. Each field becomes a label of
// sockshaper_build_info; empty fields are exported as empty labels.
type BuildInfo struct {
	Version   string // release or module version, e.g. "1.2.0"
	Revision  string // VCS commit the binary was built from
	GoVersion string // Go toolchain, e.g. "go1.26.8"
}

// NewBuildInfo returns the gauge sockshaper_build_info{version, revision, goversion},
// always 1, as Prometheus' own binaries export it: dashboards join on it to show
// which build runs where, and alerts catch a fleet running mixed versions. Register
// it on the same registry as [New]'s collectors.
func NewBuildInfo(b BuildInfo) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "A metric with a constant 1 labeled by the version, VCS revision and Go version sockshaper was built from.",
		ConstLabels: prometheus.Labels{
			"version":   b.Version,
			"revision":  b.Revision,
			"goversion": b.GoVersion,
		},
	})
	g.Set(1)
	return g
}

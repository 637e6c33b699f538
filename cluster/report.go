package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/sockshaper/sockshaper/metrics"
)

// Report is what an instance tells the others each period.
type Report struct {
	// Buckets is the demand on each limited bucket that moved bytes or had
	// sessions waiting, by the bucket's key (the same on every instance).
	Buckets map[string]Demand `json:"b,omitempty"`
	// Usage is what the instance counted of its users' bytes since its last
	// report; it goes to the cluster's totals, not to the other instances.
	Usage *Usage `json:"-"`
}

// Bounds of a peer's report. Reports come from Redis, which anything that can
// write there may have written: they are decoded into these bounds, and what
// lies outside is skipped (and counted) rather than trusted.
const (
	// MaxNameLen bounds an instance's name: a host name's 253 bytes. A member
	// of the cluster with a longer name is not a peer. configs checks
	// cluster.name against the same bound.
	MaxNameLen = 253
	// maxReportBytes bounds a report before it is decoded: about 200,000
	// buckets, ten times a campus of 2,000 active users with every app class
	// limited.
	maxReportBytes = 16 << 20
	// maxKeyLen bounds a bucket's key: a level, a user name, an app class and a
	// direction.
	maxKeyLen = 1024
	// maxReportedSessions is the most sessions one instance could hold on one
	// bucket: a session holds at least two descriptors and Linux allows at most
	// 2^20 per process. A report claiming more counts as this many.
	maxReportedSessions = 1 << 19
	// maxPeers bounds the instances read from the members list each period.
	maxPeers = 256
)

// wireDemand is a Demand as a peer wrote it: numbers that have not been checked.
type wireDemand struct {
	Used     float64 `json:"u"`
	Waiting  bool    `json:"w"`
	Sessions float64 `json:"s"`
}

// decodeReport decodes a peer's report. A report that is too large or not the
// JSON of a report is refused with reason [metrics.ClusterBadMalformed]; a
// bucket whose key is too long or whose numbers are negative is left out, and a
// session count above what one instance could hold is lowered to it, with
// reason [metrics.ClusterBadOutOfRange] (the report is used). Demand above the
// bucket's limit is left to [Allocate], which knows the limit.
func decodeReport(b []byte) (r Report, reason string, err error) {
	if len(b) > maxReportBytes {
		return Report{}, metrics.ClusterBadMalformed, fmt.Errorf("%d bytes, above %d", len(b), maxReportBytes)
	}
	var w struct {
		Buckets map[string]wireDemand `json:"b"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return Report{}, metrics.ClusterBadMalformed, err
	}
	r.Buckets = make(map[string]Demand, len(w.Buckets))
	for key, d := range w.Buckets {
		switch {
		case len(key) > maxKeyLen:
			err = fmt.Errorf("bucket key of %d bytes", len(key))
			continue
		case !(d.Used >= 0) || !(d.Sessions >= 0): // JSON has no NaN, but say so
			err = fmt.Errorf("bucket %.64q: used %g, sessions %g", key, d.Used, d.Sessions)
			continue
		case d.Sessions > maxReportedSessions:
			err = fmt.Errorf("bucket %.64q: %g sessions", key, d.Sessions)
			d.Sessions = maxReportedSessions
		}
		r.Buckets[key] = Demand{Used: d.Used, Waiting: d.Waiting, Sessions: int(d.Sessions)}
	}
	if err != nil {
		reason = metrics.ClusterBadOutOfRange
	}
	return r, reason, err
}

package cluster

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/sockshaper/sockshaper/metrics"
)

func TestDecodeReport(t *testing.T) {
	long := strings.Repeat("x", maxKeyLen+1)
	tests := []struct {
		name   string
		in     string
		reason string
		want   map[string]Demand // nil: not checked (a malformed report has none)
	}{
		{"good", `{"b":{"u|alice||down":{"u":1000,"w":true,"s":3}}}`, "",
			map[string]Demand{"u|alice||down": {Used: 1000, Waiting: true, Sessions: 3}}},
		{"empty", `{}`, "", map[string]Demand{}},
		{"an old instance's session counts are ignored", `{"s":{"alice":-1000000}}`, "", map[string]Demand{}},
		{"huge demand is kept for Allocate to clamp", `{"b":{"k":{"u":1.7e308}}}`, "",
			map[string]Demand{"k": {Used: 1.7e308}}},
		{"negative demand", `{"b":{"k":{"u":-1},"j":{"u":5}}}`, metrics.ClusterBadOutOfRange,
			map[string]Demand{"j": {Used: 5}}},
		{"negative sessions", `{"b":{"k":{"u":1,"s":-5}}}`, metrics.ClusterBadOutOfRange, map[string]Demand{}},
		{"sessions above one instance's", `{"b":{"k":{"u":1,"s":1e12}}}`, metrics.ClusterBadOutOfRange,
			map[string]Demand{"k": {Used: 1, Sessions: maxReportedSessions}}},
		{"key too long", `{"b":{"` + long + `":{"u":1}}}`, metrics.ClusterBadOutOfRange, map[string]Demand{}},
		{"not JSON", `{"b":{"k":{"u":1e3`, metrics.ClusterBadMalformed, nil},
		{"overflowing number", `{"b":{"k":{"u":1e309}}}`, metrics.ClusterBadMalformed, nil},
		{"wrong type", `{"b":{"k":{"u":"lots"}}}`, metrics.ClusterBadMalformed, nil},
		{"not an object", `[1,2,3]`, metrics.ClusterBadMalformed, nil},
		{"too large", `{"b":{"k":{"u":1}}}` + strings.Repeat(" ", maxReportBytes), metrics.ClusterBadMalformed, nil},
	}
	for _, tc := range tests {
		r, reason, err := decodeReport([]byte(tc.in))
		if reason != tc.reason || (err == nil) != (reason == "") {
			t.Errorf("%s: reason %q, err %v; want reason %q", tc.name, reason, err, tc.reason)
		}
		if tc.want == nil {
			continue
		}
		if len(r.Buckets) != len(tc.want) {
			t.Errorf("%s: buckets %v, want %v", tc.name, r.Buckets, tc.want)
		}
		for k, d := range tc.want {
			if r.Buckets[k] != d {
				t.Errorf("%s: bucket %s = %+v, want %+v", tc.name, k, r.Buckets[k], d)
			}
		}
	}
}

// FuzzDecodeReport: whatever a peer wrote, a report that is used is within
// bounds (keys short, numbers finite and at least 0, sessions at most what one
// instance holds), it survives a round trip through its own encoding, and
// Allocate keeps its promise on it.
func FuzzDecodeReport(f *testing.F) {
	for _, s := range []string{
		`{"b":{"u|alice||down":{"u":1000,"w":true,"s":3},"g|||up":{"u":5}}}`,
		`{"s":{"u1":-1000000}}`, `{"s":{"u8":1000}}`,
		`{"b":{"u|u5||down":{"u":1e300}}}`, `{"b":{"u|u5||down":{"u":1.7e308,"s":1}}}`,
		`{"b":{"k":{"u":-0,"s":-0}}}`, `{"b":{"k":{"u":5e-324,"s":1e300}}}`,
		`{"b":{"k":null}}`, `{"b":null}`, `null`, `{"b":{"k":{"u":1e3`, `"`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, reason, err := decodeReport(b)
		if (err == nil) != (reason == "") {
			t.Fatalf("reason %q with err %v", reason, err)
		}
		if reason == metrics.ClusterBadMalformed {
			if r.Buckets != nil {
				t.Fatalf("a malformed report has buckets: %v", r.Buckets)
			}
			return
		}
		demands := map[string]Demand{"self": {Used: 10, Waiting: true, Sessions: 1}}
		for k, d := range r.Buckets {
			if len(k) > maxKeyLen || math.IsNaN(d.Used) || math.IsInf(d.Used, 0) || d.Used < 0 ||
				d.Sessions < 0 || d.Sessions > maxReportedSessions {
				t.Fatalf("bucket %.40q out of bounds: %+v", k, d)
			}
			demands[k] = d
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if r2, reason, err := decodeReport(again); reason != "" || len(r2.Buckets) != len(r.Buckets) {
			t.Fatalf("re-encoded report decodes as %q, %v, %d buckets of %d", reason, err, len(r2.Buckets), len(r.Buckets))
		}
		checkAllocate(t, 1<<20, demands)
	})
}

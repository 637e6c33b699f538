package main

import (
	"math"
	"testing"
	"time"
)

// TestHistIndexBounds checks that every value lands in a bucket whose middle is
// within 3% (or half a microsecond) of it, and that buckets grow with values.
func TestHistIndexBounds(t *testing.T) {
	last := -1
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1000, 4999, 5000, 65535, 1 << 20, 1e7, 1 << 31, math.MaxUint64} {
		i := histIndex(v)
		if i < last || i >= histBuckets {
			t.Fatalf("value %d: bucket %d after %d (of %d)", v, i, last, histBuckets)
		}
		last = i
		if v > 1<<30 {
			continue // the last bucket holds everything beyond
		}
		if mid := histValue(i); math.Abs(mid-float64(v)) > max(0.5, float64(v)/histSub) {
			t.Errorf("value %d µs: bucket %d's middle %.1f µs, more than 1/%d off", v, i, mid, histSub)
		}
	}
}

func TestHistogramSummary(t *testing.T) {
	var h histogram
	if s := h.summary(); s.Count != 0 || s.P99 != 0 {
		t.Errorf("empty: %+v", s)
	}
	for i := range 1000 {
		h.add(time.Duration(i+1) * 10 * time.Microsecond) // 10 µs to 10 ms
	}
	h.add(-time.Second) // counts as 0
	s := h.summary()
	near := func(got, want float64) bool { return math.Abs(got-want) <= want/16 }
	if s.Count != 1001 || !near(s.P50, 5) || !near(s.P99, 9.9) || !near(s.Max, 10) || !near(s.Mean, 5) {
		t.Errorf("10 µs to 10 ms: %+v, want p50 5 ms, p99 9.9, max 10, mean 5", s)
	}
}

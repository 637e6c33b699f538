package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histSub is the buckets per power of two of a histogram beyond its first 64
// microseconds: 32, so that a bucket is at most 1/32 (3%) of its value wide.
const histSub = 32

// histBuckets covers 0 to beyond 2^30 µs (18 minutes), more than any run.
const histBuckets = 32 * histSub

// histogram counts durations in log-linear buckets of microseconds, safe for
// concurrent adds: the calls scenario records a jitter and a delay for every
// datagram of thousands of calls, too many to keep each one.
type histogram struct {
	counts [histBuckets]atomic.Uint64
}

// histIndex returns the bucket of v microseconds: one per microsecond below 64,
// then histSub per power of two.
func histIndex(v uint64) int {
	if v < 2*histSub {
		return int(v)
	}
	e := bits.Len64(v) - 6 // v>>e is in [32, 64)
	return min(e*histSub+int(v>>e), histBuckets-1)
}

// histValue returns the middle of bucket i, in microseconds.
func histValue(i int) float64 {
	if i < 2*histSub {
		return float64(i)
	}
	e := i/histSub - 1
	lo := uint64(i-e*histSub) << e
	return float64(lo) + float64(uint64(1)<<e)/2
}

// add counts d; a negative d counts as 0.
func (h *histogram) add(d time.Duration) {
	h.counts[histIndex(uint64(max(d, 0)/time.Microsecond))].Add(1)
}

// summary returns the count and percentiles in milliseconds, each the middle
// of its bucket; the mean is of those middles too.
func (h *histogram) summary() latencySummary {
	var c [histBuckets]uint64
	var n uint64
	var sum float64
	for i := range c {
		c[i] = h.counts[i].Load()
		n += c[i]
		sum += float64(c[i]) * histValue(i)
	}
	s := latencySummary{Count: int(n)}
	if n == 0 {
		return s
	}
	at := func(p float64) float64 {
		rank := uint64(p / 100 * float64(n-1))
		var seen uint64
		for i, k := range c {
			seen += k
			if seen > rank {
				return histValue(i) / 1000
			}
		}
		return 0
	}
	s.P50, s.P90, s.P99, s.Max = at(50), at(90), at(99), at(100)
	s.Mean = sum / float64(n) / 1000
	return s
}

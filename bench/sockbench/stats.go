package main

import (
	"math"
	"slices"
	"time"
)

// mib is one mebibyte, the unit of every throughput figure.
const mib = 1 << 20

// gib is one gibibyte, the unit of CPU cost figures.
const gib = 1 << 30

// percentile returns the p-th percentile (0 ≤ p ≤ 100) of sorted by linear
// interpolation between the closest ranks (the method of NumPy's default and of
// Excel's PERCENTILE.INC). It returns 0 for an empty slice.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	p = min(max(p, 0), 100)
	rank := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(rank))
	hi := min(lo+1, len(sorted)-1)
	frac := rank - float64(lo)
	return sorted[lo] + frac*(sorted[hi]-sorted[lo])
}

// mean returns the arithmetic mean of xs, or 0 for none.
func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	return sum / float64(len(xs))
}

// stddev returns the population standard deviation of xs: the connections of a
// run are the whole population, not a sample of it.
func stddev(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	m := mean(xs)
	var ss float64
	for _, x := range xs {
		ss += (x - m) * (x - m)
	}
	return math.Sqrt(ss / float64(len(xs)))
}

// cv returns the coefficient of variation of xs (standard deviation over mean):
// 0 when every connection got the same rate. It is 0 for fewer than two values
// or a zero mean.
func cv(xs []float64) float64 {
	m := mean(xs)
	if len(xs) < 2 || m == 0 {
		return 0
	}
	return stddev(xs) / m
}

// latencySummary is the distribution of round-trip times, in milliseconds.
type latencySummary struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// summarize sorts ds and returns their percentiles.
func summarize(ds []time.Duration) latencySummary {
	ms := make([]float64, len(ds))
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
	}
	slices.Sort(ms)
	s := latencySummary{Count: len(ms), Mean: mean(ms)}
	if len(ms) > 0 {
		s.P50, s.P90, s.P99 = percentile(ms, 50), percentile(ms, 90), percentile(ms, 99)
		s.Max = ms[len(ms)-1]
	}
	return s
}

// sample is a byte counter read at a moment, for rates over windows.
type sample struct {
	at    time.Duration // since the measured phase began
	bytes int64
}

// windowRate is the rate over the window that ends at a sample.
type windowRate struct {
	end time.Duration
	bps float64
}

// windowRates returns, for each sample at least window after the first, the rate
// in bytes/s since the latest sample at or before its time minus window. The
// samples must be in time order.
func windowRates(samples []sample, window time.Duration) []windowRate {
	var out []windowRate
	j := 0
	for i, s := range samples {
		for j+1 < i && samples[j+1].at <= s.at-window {
			j++
		}
		span := s.at - samples[j].at
		if i == 0 || span < window {
			continue
		}
		bps := float64(s.bytes-samples[j].bytes) / span.Seconds()
		out = append(out, windowRate{end: s.at, bps: bps})
	}
	return out
}

// within reports whether got is within frac (0.1 for 10%) of want.
func within(got, want, frac float64) bool {
	return math.Abs(got-want) <= frac*want
}

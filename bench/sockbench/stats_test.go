package main

import (
	"math"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestPercentile(t *testing.T) {
	xs := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	cases := []struct{ p, want float64 }{
		{0, 1}, {50, 5.5}, {90, 9.1}, {99, 9.91}, {100, 10}, {-5, 1}, {150, 10},
	}
	for _, c := range cases {
		if got := percentile(xs, c.p); !near(got, c.want) {
			t.Errorf("percentile(1..10, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("percentile([7], 99) = %v, want 7", got)
	}
}

func TestCV(t *testing.T) {
	cases := []struct {
		xs   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 0},
		{[]float64{3, 3, 3}, 0},
		{[]float64{0, 0}, 0},
		// mean 5, population standard deviation 2.
		{[]float64{2, 4, 4, 4, 5, 5, 7, 9}, 0.4},
		{[]float64{1, 3}, 0.5},
	}
	for _, c := range cases {
		if got := cv(c.xs); !near(got, c.want) {
			t.Errorf("cv(%v) = %v, want %v", c.xs, got, c.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarize(ds)
	want := latencySummary{Count: 100, P50: 50.5, P90: 90.1, P99: 99.01, Max: 100, Mean: 50.5}
	if s.Count != want.Count || !near(s.P50, want.P50) || !near(s.P90, want.P90) ||
		!near(s.P99, want.P99) || !near(s.Max, want.Max) || !near(s.Mean, want.Mean) {
		t.Errorf("summarize = %+v, want %+v", s, want)
	}
	if s := summarize(nil); s != (latencySummary{}) {
		t.Errorf("summarize(nil) = %+v, want zero", s)
	}
}

func TestWindowRates(t *testing.T) {
	ms := time.Millisecond
	// 1000 bytes per 50 ms (20 kB/s) for 400 ms, then 4000 bytes per 50 ms.
	var samples []sample
	var b int64
	for i := 0; i <= 16; i++ {
		samples = append(samples, sample{at: time.Duration(i) * 50 * ms, bytes: b})
		if i < 8 {
			b += 1000
		} else {
			b += 4000
		}
	}
	rates := windowRates(samples, 200*ms)
	if len(rates) != 13 {
		t.Fatalf("got %d windows, want 13 (ends 200..800 ms)", len(rates))
	}
	checks := map[time.Duration]float64{200 * ms: 20000, 400 * ms: 20000, 500 * ms: 50000, 600 * ms: 80000, 800 * ms: 80000}
	for _, r := range rates {
		if want, ok := checks[r.end]; ok && !near(r.bps, want) {
			t.Errorf("window ending %v: %v B/s, want %v", r.end, r.bps, want)
		}
	}
}

func TestAnalyzeRateChange(t *testing.T) {
	ms := time.Millisecond
	var rates []windowRate
	for i := 1; i <= 60; i++ {
		end := time.Duration(i) * 50 * ms
		bps := 4.0 * mib
		switch {
		case end > 1500*ms && end <= 1650*ms:
			bps = 2 * mib // the change in progress
		case end > 1650*ms:
			bps = 1.05 * mib // 5% over the new limit: within 10%
		}
		rates = append(rates, windowRate{end: end, bps: bps})
	}
	r := analyzeRateChange(rates, 1500*ms, 1*mib)
	if !near(r.ReachedSecs, 0.2) || !near(r.SettledSecs, 0.2) {
		t.Errorf("reached %v settled %v, want 0.2 and 0.2", r.ReachedSecs, r.SettledSecs)
	}
	if !near(r.BeforeMiBps, 4) || !near(r.AfterMiBps, 1.05) {
		t.Errorf("before %v after %v MiB/s, want 4 and 1.05", r.BeforeMiBps, r.AfterMiBps)
	}
	never := analyzeRateChange(rates, 1500*ms, 8*mib)
	if never.ReachedSecs != -1 || never.SettledSecs != -1 {
		t.Errorf("unreached limit: reached %v settled %v, want -1 -1", never.ReachedSecs, never.SettledSecs)
	}
}

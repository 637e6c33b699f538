package cluster

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

func TestAllocateSumsToTheLimit(t *testing.T) {
	const limit = 1000.0
	tests := []struct {
		name    string
		demands map[string]Demand
		want    map[string]float64 // checked within 1%, when given
	}{
		{"alone", map[string]Demand{"a": {Used: 10, Waiting: true}}, map[string]float64{"a": limit}},
		{"all waiting, by sessions", map[string]Demand{
			"a": {Used: 500, Waiting: true, Sessions: 3}, "b": {Used: 500, Waiting: true, Sessions: 1}},
			map[string]float64{"a": 750, "b": 250}},
		{"one waits, one paced below its part", map[string]Demand{
			"a": {Used: 800, Waiting: true, Sessions: 1}, "b": {Used: 100, Sessions: 1}},
			map[string]float64{"a": 880, "b": 120}},
		{"nobody waits: spare by sessions", map[string]Demand{
			"a": {Used: 100, Sessions: 1}, "b": {Used: 100, Sessions: 3}},
			map[string]float64{"a": 120 + 760.0/4, "b": 120 + 3*760.0/4}},
		{"claims above the limit", map[string]Demand{
			"a": {Used: 900, Sessions: 1}, "b": {Used: 900, Sessions: 1}},
			map[string]float64{"a": 500, "b": 500}},
		{"a heavy unsaturated claim leaves the waiting their floor", map[string]Demand{
			"a": {Used: 950, Sessions: 1}, "b": {Used: 50, Waiting: true, Sessions: 1}},
			map[string]float64{"a": 1140 * 1000 / 1340.0, "b": 200 * 1000 / 1340.0}},
		{"three instances", map[string]Demand{
			"a": {Used: 300, Waiting: true, Sessions: 2}, "b": {Used: 300, Waiting: true, Sessions: 2},
			"c": {Used: 10, Sessions: 1}}, nil},
	}
	for _, tc := range tests {
		var sum float64
		for self := range tc.demands {
			got := Allocate(limit, self, tc.demands)
			sum += got
			if want, ok := tc.want[self]; ok && math.Abs(got-want) > want/100 {
				t.Errorf("%s: %s gets %.1f, want %.1f", tc.name, self, got, want)
			}
		}
		if math.Abs(sum-limit) > 1e-6*limit {
			t.Errorf("%s: parts add up to %.3f, want the limit %.0f", tc.name, sum, limit)
		}
	}
	if got := Allocate(limit, "x", map[string]Demand{"a": {Used: 5}}); got != limit {
		t.Errorf("an instance absent from the reports gets %v, want the whole limit", got)
	}
}

// TestAllocateConverges simulates instances whose sessions want more or less
// than they get, period after period, each using what its part allows: the total
// stays at the limit and the split follows demand.
func TestAllocateConverges(t *testing.T) {
	const limit = 1000.0
	tests := []struct {
		offered  map[string]float64 // what each instance's sessions would move, B/s
		sessions map[string]int
		want     map[string]float64 // after convergence, within 5%
	}{
		{ // all traffic on one instance: it gets nearly all of it
			map[string]float64{"a": math.Inf(1), "b": 0}, map[string]int{"a": 4, "b": 0},
			map[string]float64{"a": 990}},
		{ // two unpaced instances, 3 sessions and 1: split by sessions
			map[string]float64{"a": math.Inf(1), "b": math.Inf(1)}, map[string]int{"a": 3, "b": 1},
			map[string]float64{"a": 750, "b": 250}},
		{ // a paced call of 100 B/s beside a download: the call keeps what it needs
			map[string]float64{"a": math.Inf(1), "b": 100}, map[string]int{"a": 1, "b": 1},
			map[string]float64{"b": 100}},
	}
	for i, tc := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			rates := map[string]float64{}
			for k := range tc.offered {
				rates[k] = limit / float64(len(tc.offered))
			}
			var used map[string]float64
			for range 40 {
				demands := map[string]Demand{}
				used = map[string]float64{}
				for k, offered := range tc.offered {
					used[k] = min(offered, rates[k])
					if tc.sessions[k] > 0 {
						demands[k] = Demand{Used: used[k], Waiting: offered > rates[k], Sessions: tc.sessions[k]}
					}
				}
				for k := range demands {
					rates[k] = Allocate(limit, k, demands)
				}
			}
			var total float64
			for _, u := range used {
				total += u
			}
			if total > limit*1.01 {
				t.Errorf("instances moved %.0f B/s together, above the limit %.0f", total, limit)
			}
			for k, want := range tc.want {
				if math.Abs(used[k]-want) > want*0.05 {
					t.Errorf("%s moves %.0f B/s, want %.0f (all: %v)", k, used[k], want, used)
				}
			}
		})
	}
}

// checkAllocate checks Allocate's promise for every instance of demands: a
// part finite, above 0 and at most the limit, and the parts adding up to the
// limit.
func checkAllocate(t *testing.T, limit float64, demands map[string]Demand) {
	t.Helper()
	if got := Allocate(limit, "absent", demands); got != limit {
		t.Fatalf("limit %g: an instance absent from the demands gets %g, want the limit", limit, got)
	}
	if len(demands) == 0 {
		return
	}
	var sum float64
	for self := range demands {
		part := Allocate(limit, self, demands)
		if math.IsNaN(part) || math.IsInf(part, 0) || part <= 0 || part > limit*(1+1e-12) {
			t.Fatalf("limit %g: %s's part is %g (demands %+v)", limit, self, part, demands)
		}
		sum += part
	}
	if math.Abs(sum-limit) > 1e-9*limit {
		t.Fatalf("limit %g: parts add up to %g (demands %+v)", limit, sum, demands)
	}
}

// TestAllocateHostileDemand: demands no instance could report (a use above the
// limit, overflowing to +Inf with headroom; negative; NaN; negative or
// enormous session counts) keep the promise, and count as the most an
// instance could honestly claim: a use above the limit as the limit.
func TestAllocateHostileDemand(t *testing.T) {
	const limit = 1 << 20
	honest := Demand{Used: limit / 2, Waiting: true, Sessions: 2}
	for _, bad := range []Demand{
		{Used: 1e300}, {Used: 1.7e308}, {Used: math.MaxFloat64, Waiting: true},
		{Used: math.Inf(1)}, {Used: math.NaN()}, {Used: -1e300, Sessions: -5},
		{Used: 1, Waiting: true, Sessions: math.MaxInt}, {Used: 1, Waiting: true, Sessions: math.MinInt},
	} {
		demands := map[string]Demand{"a": honest, "b": honest, "liar": bad}
		checkAllocate(t, limit, demands)
		clamped := bad
		clamped.Used = min(max(bad.Used, 0), limit)
		if math.IsNaN(bad.Used) {
			clamped.Used = 0
		}
		for self := range demands {
			sane := map[string]Demand{"a": honest, "b": honest, "liar": clamped}
			if got, want := Allocate(limit, self, demands), Allocate(limit, self, sane); math.Abs(got-want) > 1e-9*limit {
				t.Errorf("liar %+v: %s gets %g, as if the liar claimed %+v it would get %g", bad, self, got, clamped, want)
			}
		}
	}
}

// FuzzAllocate: for any limit from 1 B/s up and up to eight instances' demands
// of any values, Allocate keeps its promise.
func FuzzAllocate(f *testing.F) {
	f.Add(float64(1<<20), []byte{})
	f.Add(float64(1000), []byte("\x00\x00\x00\x00\x00\x00\xf0\x7f\x01\x05\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add(float64(1e300), []byte("\xff\xff\xff\xff\xff\xff\xef\x7f\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00"+
		"\x00\x00\x00\x00\x00\x00\xf8\x7f\x01\xff\xff\xff\xff\xff\xff\xff\x7f"))
	f.Add(float64(1), []byte(strings.Repeat("\x01\x00\x00\x00\x00\x00\x00\x80\x01\x00\x00\x00\x00\x00\x00\x00\x80", 8)))
	f.Fuzz(func(t *testing.T, limit float64, b []byte) {
		if !(limit >= 1 && limit <= math.MaxFloat64/4) {
			t.Skip("a config's limits are at least 1 B/s")
		}
		demands := map[string]Demand{}
		for i := 0; len(b) >= 17 && i < 8; i, b = i+1, b[17:] {
			demands[fmt.Sprint(i)] = Demand{
				Used:     math.Float64frombits(binary.LittleEndian.Uint64(b)),
				Waiting:  b[8]&1 == 1,
				Sessions: int(int64(binary.LittleEndian.Uint64(b[9:]))),
			}
		}
		checkAllocate(t, limit, demands)
	})
}

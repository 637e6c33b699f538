package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// maxRoundTrips bounds the round trips of one connection, and so the memory of
// their timings (8 bytes each, 80 MB at most). A proxied loopback round trip
// takes 30 µs or more, so only runs of several minutes reach it; they then end
// early, which the reported duration shows.
const maxRoundTrips = 10_000_000

// latencyResult is what a latency run measured.
type latencyResult struct {
	Scenario   string         `json:"scenario"`
	Via        string         `json:"via"`
	Conns      int            `json:"conns"`
	LiveConns  int            `json:"live_conns"`
	Seconds    float64        `json:"seconds"`
	PerSecond  float64        `json:"round_trips_per_second"`
	RoundTrip  latencySummary `json:"round_trip"`
	Errors     int            `json:"errors"`
	ErrorSteps map[string]int `json:"error_steps,omitempty"`
}

// runLatency times 64-byte round trips to the echo target, back to back on each
// of -conns connections, for -duration.
func runLatency(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	t, err := startTargets(log)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	errs := newErrorCount(log)
	conns := opener{d: newDialer(o), target: t.echo, errs: errs}.open(ctx, o.perConn)
	defer closeAll(conns)
	if live(conns) == 0 {
		return nil, errors.New("no session opened; see the errors above")
	}
	start := time.Now()
	end := start.Add(o.duration)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Go(func() {
			ds := timeRoundTrips(ctx, c, end, o.timeout, errs)
			mu.Lock()
			all = append(all, ds...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := &latencyResult{Scenario: "latency", Via: newDialer(o).via(), Conns: len(conns), LiveConns: live(conns),
		Seconds: elapsed.Seconds(), PerSecond: float64(len(all)) / elapsed.Seconds(), RoundTrip: summarize(all)}
	r.Errors, r.ErrorSteps = errs.counts()
	return r, ctx.Err()
}

// timeRoundTrips runs round trips on c until end, ctx ends, an error or
// [maxRoundTrips], and returns their durations. A round trip may take timeout
// past end before it counts as an error.
func timeRoundTrips(ctx context.Context, c net.Conn, end time.Time, timeout time.Duration, errs *errorCount) []time.Duration {
	msg, buf := pattern(echoSize), make([]byte, echoSize)
	c.SetDeadline(end.Add(timeout))
	var ds []time.Duration
	for len(ds) < maxRoundTrips && ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			break
		}
		if err := roundTrip(c, msg, buf); err != nil {
			errs.add(&stepError{"io", err})
			break
		}
		ds = append(ds, time.Since(t0))
	}
	return ds
}

func (r *latencyResult) table(w io.Writer) {
	fmt.Fprintf(w, "latency via %s: %d-byte round trips on %d connections (%d live), %.2f s\n",
		r.Via, echoSize, r.Conns, r.LiveConns, r.Seconds)
	fmt.Fprintf(w, "round trips  %d  (%.0f/s)\n", r.RoundTrip.Count, r.PerSecond)
	writeSummary(w, r.RoundTrip)
	fmt.Fprintf(w, "errors       %d %v\n", r.Errors, stepList(r.ErrorSteps))
}

// writeSummary writes a latency distribution as one aligned table.
func writeSummary(w io.Writer, s latencySummary) {
	tw := newTable(w)
	fmt.Fprintln(tw, "ms\tp50\tp90\tp99\tmax\tmean\t")
	fmt.Fprintf(tw, "\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", s.P50, s.P90, s.P99, s.Max, s.Mean)
	tw.Flush()
}

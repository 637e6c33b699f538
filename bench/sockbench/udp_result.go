package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// udpResult is what a udp run measured. Rates count datagrams echoed before the
// run's end; every datagram sent is either received (echoed, possibly late) or
// lost (never echoed, even in the loss timeout after the run).
type udpResult struct {
	Scenario          string         `json:"scenario"`
	Via               string         `json:"via"`
	Conns             int            `json:"conns"`
	LiveConns         int            `json:"live_conns"`
	Size              int            `json:"size"`
	Window            int            `json:"window"`
	LossTimeoutMs     float64        `json:"loss_timeout_ms"`
	Seconds           float64        `json:"seconds"`
	Sent              int64          `json:"sent"`
	Received          int64          `json:"received"`
	Lost              int64          `json:"lost"`
	Late              int64          `json:"late"`
	Timeouts          int64          `json:"timeouts"`
	Bad               int64          `json:"bad"`
	TargetReceived    int64          `json:"target_received"`
	PerSecond         float64        `json:"datagrams_per_second"`
	PerConnPerSecond  []float64      `json:"per_conn_datagrams_per_second"`
	MinPerSecond      float64        `json:"min_datagrams_per_second"`
	MaxPerSecond      float64        `json:"max_datagrams_per_second"`
	CV                float64        `json:"cv"`
	RoundTrip         latencySummary `json:"round_trip"`
	Errors            int            `json:"errors"`
	ErrorSteps        map[string]int `json:"error_steps,omitempty"`
	ProxyCPUSecs      *float64       `json:"proxy_cpu_seconds,omitempty"`
	CPUSecsPerMillion *float64       `json:"proxy_cpu_seconds_per_million,omitempty"`
}

// newUDPResult sums the flights (nil for an association that did not open) of a
// run of elapsed; target is what the echo counted.
func newUDPResult(o *options, flights []*udpFlight, elapsed time.Duration, target int64, errs *errorCount) *udpResult {
	r := &udpResult{Scenario: "udp", Via: newDialer(o).via(), Conns: len(flights), Size: o.size, Window: o.window,
		LossTimeoutMs: float64(o.lossTimeout) / float64(time.Millisecond), Seconds: elapsed.Seconds(), TargetReceived: target}
	r.Errors, r.ErrorSteps = errs.counts()
	secs := max(elapsed.Seconds(), 1e-9)
	var inRun int64
	var rtts []time.Duration
	for _, f := range flights {
		if f == nil {
			continue
		}
		r.LiveConns++
		r.Sent += int64(f.next)
		r.Received += f.received
		r.Lost += f.lost()
		r.Late += f.late
		r.Timeouts += f.timeouts
		r.Bad += f.bad
		inRun += f.receivedInRun
		r.PerConnPerSecond = append(r.PerConnPerSecond, float64(f.receivedInRun)/secs)
		rtts = append(rtts, f.rtts...)
	}
	r.PerSecond = float64(inRun) / secs
	r.CV = cv(r.PerConnPerSecond)
	if len(r.PerConnPerSecond) > 0 {
		r.MinPerSecond, r.MaxPerSecond = slices.Min(r.PerConnPerSecond), slices.Max(r.PerConnPerSecond)
	}
	r.RoundTrip = summarize(rtts)
	return r
}

// setCPU records the proxy's CPU seconds over the run and their cost per
// million datagrams echoed.
func (r *udpResult) setCPU(secs float64) {
	r.ProxyCPUSecs = &secs
	if r.Received > 0 {
		perMillion := secs / (float64(r.Received) / 1e6)
		r.CPUSecsPerMillion = &perMillion
	}
}

func (r *udpResult) table(w io.Writer) {
	fmt.Fprintf(w, "udp via %s: %d associations (%d live), %d-byte datagrams, %d in flight each, %.2f s\n",
		r.Via, r.Conns, r.LiveConns, r.Size, r.Window, r.Seconds)
	fmt.Fprintf(w, "echoed     %10.0f datagrams/s  (per association mean %.0f  min %.0f  max %.0f  CV %.3f)\n",
		r.PerSecond, mean(r.PerConnPerSecond), r.MinPerSecond, r.MaxPerSecond, r.CV)
	fmt.Fprintf(w, "datagrams  sent %d  received %d  lost %d  (late %d, timed out %d after %.0f ms; echo target got %d; bad replies %d)\n",
		r.Sent, r.Received, r.Lost, r.Late, r.Timeouts, r.LossTimeoutMs, r.TargetReceived, r.Bad)
	fmt.Fprintln(w, "round trip, with the window in flight:")
	writeSummary(w, r.RoundTrip)
	fmt.Fprintf(w, "errors     %d %v\n", r.Errors, stepList(r.ErrorSteps))
	if r.ProxyCPUSecs != nil {
		fmt.Fprintf(w, "proxy CPU  %.2f s", *r.ProxyCPUSecs)
		if r.CPUSecsPerMillion != nil {
			fmt.Fprintf(w, "  (%.2f s per million datagrams)", *r.CPUSecsPerMillion)
		}
		fmt.Fprintln(w)
	}
}

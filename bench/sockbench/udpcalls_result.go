package main

import (
	"fmt"
	"io"
	"time"
)

// callsResult is what a udp-calls run measured over its measured phase. A
// datagram counts by its scheduled send time: sent when that falls in the
// measured phase, received when it arrived before the drain ended.
type callsResult struct {
	Scenario       string         `json:"scenario"`
	Via            string         `json:"via"`
	Calls          int            `json:"calls"`
	LiveCalls      int            `json:"live_calls"`
	FrameMs        float64        `json:"frame_ms"`
	Size           int            `json:"size"`
	Seconds        float64        `json:"seconds"`
	Sent           int64          `json:"sent"`
	Received       int64          `json:"received"`
	Lost           int64          `json:"lost"`
	LossPercent    float64        `json:"loss_percent"`
	UpLost         int64          `json:"up_lost"`
	DownLost       int64          `json:"down_lost"`
	SendErrors     int64          `json:"send_errors"`
	Bad            int64          `json:"bad"`
	Jitter         latencySummary `json:"jitter"`
	TransitJitter  latencySummary `json:"transit_jitter"`
	Delay          latencySummary `json:"delay"`
	SendLateness   latencySummary `json:"send_lateness"`
	Errors         int            `json:"errors"`
	ErrorSteps     map[string]int `json:"error_steps,omitempty"`
	ToolCPUPercent float64        `json:"tool_cpu_percent"`
	ProxyCPU       *float64       `json:"proxy_cpu_percent,omitempty"`
	ProxyCPUPer1k  *float64       `json:"proxy_cpu_percent_per_1000_calls,omitempty"`
	ProxyRSSMiB    *float64       `json:"proxy_rss_mib,omitempty"`
	RSSPerCallKiB  *float64       `json:"proxy_rss_kib_per_call,omitempty"`
	PSSPerCallKiB  *float64       `json:"proxy_pss_kib_per_call,omitempty"` // fair to a forking proxy (Dante)
	ProxyFDs       *int           `json:"proxy_fds,omitempty"`
}

func newCallsResult(o *options, calls []*udpCall, st *callStats, m callMeasure, errs *errorCount) *callsResult {
	r := &callsResult{Scenario: "udp-calls", Via: newDialer(o).via(), Calls: len(calls), Size: o.udpCalls.size,
		FrameMs: float64(o.udpCalls.frame) / float64(time.Millisecond), Seconds: o.duration.Seconds()}
	r.Errors, r.ErrorSteps = errs.counts()
	for _, c := range calls {
		if c == nil {
			continue
		}
		r.LiveCalls++
		for i, d := range [2]*callDirection{&c.up, &c.down} {
			// A datagram received that was never counted as sent cannot be;
			// clamp so that a late far end cannot make loss negative.
			got := min(d.received, d.sent)
			r.Sent += d.sent
			r.Received += got
			r.SendErrors += d.sendErrs
			r.Bad += d.bad
			if i == 0 {
				r.UpLost += d.sent - got
			} else {
				r.DownLost += d.sent - got
			}
		}
	}
	r.Lost = r.Sent - r.Received
	if r.Sent > 0 {
		r.LossPercent = 100 * float64(r.Lost) / float64(r.Sent)
	}
	r.Jitter, r.TransitJitter = st.jitter.summary(), st.transit.summary()
	r.Delay, r.SendLateness = st.delay.summary(), st.lateness.summary()
	secs := max(o.duration.Seconds(), 1e-9)
	r.ToolCPUPercent = 100 * m.toolCPU / secs
	if m.hasProxy {
		cpu := 100 * m.proxyCPU / secs
		per1k := cpu * 1000 / float64(max(r.LiveCalls, 1))
		rss := float64(m.mem1.RSSKiB) / 1024
		perCall := float64(m.mem1.RSSKiB-m.mem0.RSSKiB) / float64(max(r.LiveCalls, 1))
		pssPerCall := float64(m.mem1.PSSKiB-m.mem0.PSSKiB) / float64(max(r.LiveCalls, 1))
		r.ProxyCPU, r.ProxyCPUPer1k, r.ProxyRSSMiB, r.RSSPerCallKiB, r.ProxyFDs = &cpu, &per1k, &rss, &perCall, &m.mem1.FDs
		r.PSSPerCallKiB = &pssPerCall
	}
	return r
}

func (r *callsResult) table(w io.Writer) {
	fmt.Fprintf(w, "udp-calls via %s: %d of %d calls, %d B every %.0f ms each way, %.1f s measured\n",
		r.Via, r.LiveCalls, r.Calls, r.Size, r.FrameMs, r.Seconds)
	fmt.Fprintf(w, "datagrams: %d sent, %d received, %d lost (%.3f%%: %d toward the far ends, %d toward the clients), %d send errors, %d bad\n",
		r.Sent, r.Received, r.Lost, r.LossPercent, r.UpLost, r.DownLost, r.SendErrors, r.Bad)
	for _, l := range []struct {
		name string
		s    latencySummary
	}{{"jitter against the schedule", r.Jitter}, {"jitter against the send times", r.TransitJitter},
		{"delay after schedule", r.Delay}, {"senders' lateness", r.SendLateness}} {
		fmt.Fprintf(w, "%s (ms): p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", l.name, l.s.P50, l.s.P90, l.s.P99, l.s.Max)
	}
	fmt.Fprintf(w, "sockbench CPU: %.0f%% of a core\n", r.ToolCPUPercent)
	if r.ProxyCPU != nil {
		fmt.Fprintf(w, "proxy: CPU %.1f%% of a core (%.1f%% per 1,000 calls), RSS %.1f MiB (%.1f KiB per call, PSS %.1f), %d descriptors\n",
			*r.ProxyCPU, *r.ProxyCPUPer1k, *r.ProxyRSSMiB, *r.RSSPerCallKiB, *r.PSSPerCallKiB, *r.ProxyFDs)
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors: %d %s\n", r.Errors, stepList(r.ErrorSteps))
	}
}

package main

import (
	"fmt"
	"io"
	"slices"
)

// pacedFigures are the download figures of many paced or shaped sessions: how
// the sources were paced, how many connections got the expected rate, and what
// the proxy and sockbench used over the measured phase.
type pacedFigures struct {
	WarmupSecs    float64 `json:"warmup_seconds,omitempty"`
	SourceConnBps int64   `json:"source_rate_per_conn_bps,omitempty"`
	FrameMs       float64 `json:"frame_ms,omitempty"`
	FrameBytes    int     `json:"frame_bytes,omitempty"`
	// FramesSentShare is the source's writes over the frames due in the measured
	// phase: below 1, late turns merged frames, so the proxy saw fewer, larger
	// messages than a call sends.
	FramesSentShare float64    `json:"frames_sent_share,omitempty"`
	ReadEveryMs     float64    `json:"read_every_ms,omitempty"`
	Check           *rateCheck `json:"rate_check,omitempty"`
	// ProxyCPUPct is the proxy's CPU over the measured phase in % of one core;
	// ProxyCPUPer1000 is that per 1,000 live sessions.
	ProxyCPUPct     *float64 `json:"proxy_cpu_percent,omitempty"`
	ProxyCPUPer1000 *float64 `json:"proxy_cpu_percent_per_1000_sessions,omitempty"`
	ProxyRSSMiB     *float64 `json:"proxy_rss_mib,omitempty"`
	// ToolCPUPct is sockbench's own CPU in % of one core: near the cores the
	// machine has left, sockbench itself is the bottleneck.
	ToolCPUPct float64 `json:"tool_cpu_percent"`
}

// rateCheck counts the connections whose rate over the measured phase is within
// a tolerance of the expected rate. Rates are kbit/s (1000 bit/s).
type rateCheck struct {
	ExpectKbps float64 `json:"expect_kbps"`
	Tolerance  float64 `json:"tolerance"` // a fraction: 0.05 is ±5%
	Conns      int     `json:"conns"`     // live connections checked
	Within     int     `json:"within"`
	Below      int     `json:"below"`
	Above      int     `json:"above"`
	Share      float64 `json:"share_within"` // Within / Conns
	MinKbps    float64 `json:"min_kbps"`
	MedianKbps float64 `json:"median_kbps"`
	MaxKbps    float64 `json:"max_kbps"`
}

// checkRates counts rates (bytes/s) against want (bytes/s) ± tolerance.
func checkRates(rates []float64, want, tolerance float64) *rateCheck {
	c := &rateCheck{ExpectKbps: kbps(want), Tolerance: tolerance, Conns: len(rates)}
	for _, r := range rates {
		switch {
		case within(r, want, tolerance):
			c.Within++
		case r < want:
			c.Below++
		default:
			c.Above++
		}
	}
	if len(rates) > 0 {
		sorted := slices.Sorted(slices.Values(rates))
		c.Share = float64(c.Within) / float64(len(rates))
		c.MinKbps, c.MedianKbps, c.MaxKbps = kbps(sorted[0]), kbps(percentile(sorted, 50)), kbps(sorted[len(sorted)-1])
	}
	return c
}

// kbps converts bytes/s to kbit/s.
func kbps(bytesPerSec float64) float64 { return bytesPerSec * 8 / 1000 }

// setPhase records the pacing, the rate check and the CPU and memory figures of
// a measured phase.
func (r *transferResult) setPhase(o *options, p phase) {
	c := o.calls
	r.WarmupSecs = c.warmup.Seconds()
	r.ReadEveryMs = float64(c.readEvery.Microseconds()) / 1000
	if c.sourceConn > 0 {
		r.SourceConnBps, r.FrameBytes = c.sourceConn, frameBytes(c.sourceConn, c.frame)
		r.FrameMs = float64(c.frame.Microseconds()) / 1000
		if due := float64(r.LiveConns) * p.elapsed.Seconds() / c.frame.Seconds(); due > 0 {
			r.FramesSentShare = float64(p.sourceWrites) / due
		}
	}
	if c.expectBps > 0 {
		rates := make([]float64, len(r.PerConnMiBps))
		for i, v := range r.PerConnMiBps {
			rates[i] = v * mib
		}
		r.Check = checkRates(rates, float64(c.expectBps), c.tolerance)
	}
	secs := max(p.elapsed.Seconds(), 1e-9)
	r.ToolCPUPct = p.toolCPU / secs * 100
	if p.proxyCPU != nil {
		r.setCPU(*p.proxyCPU)
		pct := *p.proxyCPU / secs * 100
		r.ProxyCPUPct = &pct
		if r.LiveConns > 0 {
			per := pct / (float64(r.LiveConns) / 1000)
			r.ProxyCPUPer1000 = &per
		}
	}
	if p.proxyMem != nil {
		rss := float64(p.proxyMem.RSSKiB) / 1024
		r.ProxyRSSMiB = &rss
	}
}

// callTable writes the lines of the call figures that were measured.
func (r *transferResult) callTable(w io.Writer) {
	if r.SourceConnBps > 0 {
		fmt.Fprintf(w, "source     %.1f kbit/s per connection in %g ms frames of %d B; %.1f%% of the frames due sent as writes of their own\n",
			kbps(float64(r.SourceConnBps)), r.FrameMs, r.FrameBytes, min(r.FramesSentShare, 1)*100)
	}
	if r.WarmupSecs > 0 {
		fmt.Fprintf(w, "warm-up    %g s before the measured phase\n", r.WarmupSecs)
	}
	if c := r.Check; c != nil {
		fmt.Fprintf(w, "rate check %d of %d (%.1f%%) within ±%g%% of %g kbit/s (%d below, %d above)\n",
			c.Within, c.Conns, c.Share*100, c.Tolerance*100, c.ExpectKbps, c.Below, c.Above)
		fmt.Fprintf(w, "per conn   min %.1f  median %.1f  max %.1f kbit/s\n", c.MinKbps, c.MedianKbps, c.MaxKbps)
	}
	if r.ProxyCPUPct != nil {
		fmt.Fprintf(w, "proxy CPU  %.1f%% of a core", *r.ProxyCPUPct)
		if r.ProxyCPUPer1000 != nil {
			fmt.Fprintf(w, " (%.2f%% per 1,000 sessions)", *r.ProxyCPUPer1000)
		}
		fmt.Fprintln(w)
	}
	if r.ProxyRSSMiB != nil {
		fmt.Fprintf(w, "proxy RSS  %.1f MiB\n", *r.ProxyRSSMiB)
	}
	fmt.Fprintf(w, "sockbench  %.1f%% of a core\n", r.ToolCPUPct)
}

package main

import (
	"fmt"
	"io"
	"slices"
	"time"
)

// transferResult is what a download or upload run measured. Rates are MiB/s over
// the measured phase; failed sessions are left out of every rate and counted in
// Errors.
type transferResult struct {
	Scenario      string         `json:"scenario"`
	Via           string         `json:"via"`
	Conns         int            `json:"conns"`
	LiveConns     int            `json:"live_conns"`
	Seconds       float64        `json:"seconds"`
	ClientRateBps int64          `json:"client_rate_bps,omitempty"`
	SourceRateBps int64          `json:"source_rate_bps,omitempty"`
	Bytes         int64          `json:"bytes"`
	TotalMiBps    float64        `json:"total_mibps"`
	PerConnMiBps  []float64      `json:"per_conn_mibps"`
	MeanMiBps     float64        `json:"mean_mibps"`
	MinMiBps      float64        `json:"min_mibps"`
	MaxMiBps      float64        `json:"max_mibps"`
	CV            float64        `json:"cv"`
	Users         []userTotal    `json:"users"`
	Errors        int            `json:"errors"`
	ErrorSteps    map[string]int `json:"error_steps,omitempty"`
	ProxyCPUSecs  *float64       `json:"proxy_cpu_seconds,omitempty"`
	CPUSecsPerGiB *float64       `json:"proxy_cpu_seconds_per_gib,omitempty"`
	// RSSKiBPerConn is the growth of the proxy's resident memory from before
	// the sessions opened to the end of the measured phase, per live session.
	RSSKiBPerConn *float64 `json:"proxy_rss_kib_per_conn,omitempty"`
	pacedFigures
}

// userTotal is one user's share of a transfer run.
type userTotal struct {
	User       string  `json:"user"`
	Conns      int     `json:"conns"`
	Bytes      int64   `json:"bytes"`
	TotalMiBps float64 `json:"total_mibps"`
	CV         float64 `json:"cv"`
}

// newTransferResult computes the rates from the bytes of each connection (-1 for
// a failed one) over its seconds, and the totals over elapsed.
func newTransferResult(o *options, up bool, bytes []int64, connSecs []float64, elapsed time.Duration, errs *errorCount) *transferResult {
	r := &transferResult{Scenario: "download", Via: newDialer(o).via(), Conns: len(bytes),
		Seconds: elapsed.Seconds(), ClientRateBps: o.clientBps, SourceRateBps: o.sourceBps}
	if up {
		r.Scenario = "upload"
	}
	r.Errors, r.ErrorSteps = errs.counts()
	secs := max(elapsed.Seconds(), 1e-9)
	var order []string
	byUser := map[string]*userTotal{}
	userRates := map[string][]float64{}
	for i, b := range bytes {
		if b < 0 {
			continue
		}
		rate := float64(b) / mib / max(connSecs[i], 1e-9)
		r.LiveConns++
		r.Bytes += b
		r.PerConnMiBps = append(r.PerConnMiBps, rate)
		name := o.perConn[i].label()
		u, ok := byUser[name]
		if !ok {
			u = &userTotal{User: name}
			byUser[name] = u
			order = append(order, name)
		}
		u.Conns++
		u.Bytes += b
		userRates[name] = append(userRates[name], rate)
	}
	for _, name := range order {
		u := byUser[name]
		u.TotalMiBps = float64(u.Bytes) / mib / secs
		u.CV = cv(userRates[name])
		r.Users = append(r.Users, *u)
	}
	r.TotalMiBps = float64(r.Bytes) / mib / secs
	r.MeanMiBps, r.CV = mean(r.PerConnMiBps), cv(r.PerConnMiBps)
	if len(r.PerConnMiBps) > 0 {
		r.MinMiBps, r.MaxMiBps = slices.Min(r.PerConnMiBps), slices.Max(r.PerConnMiBps)
	}
	return r
}

// setCPU records the proxy's CPU seconds over the run and their cost per GiB.
func (r *transferResult) setCPU(secs float64) {
	r.ProxyCPUSecs = &secs
	if r.Bytes > 0 {
		perGiB := secs / (float64(r.Bytes) / gib)
		r.CPUSecsPerGiB = &perGiB
	}
}

// setMemoryPerConn records the proxy's memory growth per live session
// between before (the sessions not yet open) and after (the measured phase's
// end); nil without -pid.
func (r *transferResult) setMemoryPerConn(before, after *memory) {
	if before != nil && after != nil && r.LiveConns > 0 {
		per := float64(after.RSSKiB-before.RSSKiB) / float64(r.LiveConns)
		r.RSSKiBPerConn = &per
	}
}

// maxConnRows is how many connections the table lists one by one; beyond it
// only the summary is useful.
const maxConnRows = 32

func (r *transferResult) table(w io.Writer) {
	fmt.Fprintf(w, "%s via %s: %d connections (%d live), %.2f s", r.Scenario, r.Via, r.Conns, r.LiveConns, r.Seconds)
	if r.ClientRateBps > 0 {
		fmt.Fprintf(w, ", client paced to %.2f MiB/s", float64(r.ClientRateBps)/mib)
	}
	if r.SourceRateBps > 0 {
		fmt.Fprintf(w, ", source paced to %.2f MiB/s", float64(r.SourceRateBps)/mib)
	}
	fmt.Fprintf(w, "\ntotal      %10.2f MiB/s  (%.1f MiB)\n", r.TotalMiBps, float64(r.Bytes)/mib)
	fmt.Fprintf(w, "per conn   mean %.2f  min %.2f  max %.2f MiB/s  CV %.3f\n", r.MeanMiBps, r.MinMiBps, r.MaxMiBps, r.CV)
	fmt.Fprintf(w, "errors     %d %v\n", r.Errors, stepList(r.ErrorSteps))
	if r.ProxyCPUSecs != nil {
		fmt.Fprintf(w, "proxy CPU  %.2f s", *r.ProxyCPUSecs)
		if r.CPUSecsPerGiB != nil {
			fmt.Fprintf(w, "  (%.3f s/GiB)", *r.CPUSecsPerGiB)
		}
		fmt.Fprintln(w)
	}
	if r.RSSKiBPerConn != nil {
		fmt.Fprintf(w, "proxy RSS  %+.1f KiB per connection\n", *r.RSSKiBPerConn)
	}
	r.callTable(w)
	if len(r.Users) <= maxConnRows {
		tw := newTable(w)
		fmt.Fprintln(tw, "user\tconns\tMiB/s\tCV\t")
		for _, u := range r.Users {
			fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.3f\t\n", u.User, u.Conns, u.TotalMiBps, u.CV)
		}
		tw.Flush()
	}
	if len(r.PerConnMiBps) <= maxConnRows {
		fmt.Fprint(w, "per conn MiB/s:")
		for _, v := range r.PerConnMiBps {
			fmt.Fprintf(w, " %.2f", v)
		}
		fmt.Fprintln(w)
	}
}

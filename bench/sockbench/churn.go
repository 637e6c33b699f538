package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Bounds of the churn loop.
const (
	// maxSessionsPerClient caps one client's sessions. Every session leaves a
	// socket in TIME_WAIT for 60 s on the side that closed first; 28,000
	// ephemeral ports per destination are what Linux has by default, so a run
	// that nears this cap already reuses ports (loopback allows it by default,
	// net.ipv4.tcp_tw_reuse=2) and should be shorter.
	maxSessionsPerClient = 200_000
	// errorBackoff keeps a client whose sessions fail at once (proxy down,
	// limit reached) from spinning.
	errorBackoff = 10 * time.Millisecond
)

// churnResult is what a churn run measured.
type churnResult struct {
	Scenario    string         `json:"scenario"`
	Via         string         `json:"via"`
	Clients     int            `json:"clients"`
	Seconds     float64        `json:"seconds"`
	Sessions    int            `json:"sessions"`
	PerSecond   float64        `json:"sessions_per_second"`
	SessionTime latencySummary `json:"session_time"`
	TLS         *tlsCounts     `json:"tls,omitempty"` // -tls: handshakes, resumed ones
	Errors      int            `json:"errors"`
	ErrorSteps  map[string]int `json:"error_steps,omitempty"`
	// ProxyCPUMicros is the proxy's CPU time per session (user and system, its
	// whole process tree), with -pid; ToolCPUMicros is sockbench's own.
	ProxyCPUMicros *float64 `json:"proxy_cpu_us_per_session,omitempty"`
	ToolCPUMicros  float64  `json:"tool_cpu_us_per_session"`
}

// runChurn has -conns clients each loop whole sessions for -duration: connect,
// greeting, authentication, CONNECT to the echo target, one 64-byte round trip,
// close.
func runChurn(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	t, err := startTargets(log)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	d := newDialer(o)
	errs := newErrorCount(log)
	cpu, err := startChurnCPU(o.pid)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	end := start.Add(o.duration)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	for _, c := range o.perConn {
		wg.Go(func() {
			ds := churnClient(ctx, d, c, t.echo, end, errs)
			mu.Lock()
			all = append(all, ds...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := &churnResult{Scenario: "churn", Via: d.via(), Clients: len(o.perConn), Seconds: elapsed.Seconds(),
		Sessions: len(all), PerSecond: float64(len(all)) / elapsed.Seconds(), SessionTime: summarize(all), TLS: d.tls.counts()}
	r.Errors, r.ErrorSteps = errs.counts()
	cpu.finish(r)
	return r, ctx.Err()
}

// churnClient loops sessions until end, ctx ends or [maxSessionsPerClient], and
// returns the durations of the sessions that succeeded.
func churnClient(ctx context.Context, d dialer, c credential, echo netip.AddrPort, end time.Time, errs *errorCount) []time.Duration {
	msg, buf := pattern(echoSize), make([]byte, echoSize)
	var ds []time.Duration
	for n := 0; n < maxSessionsPerClient && ctx.Err() == nil && time.Now().Before(end); n++ {
		t0 := time.Now()
		if err := oneSession(ctx, d, c, echo, msg, buf); err != nil {
			errs.add(err)
			time.Sleep(errorBackoff)
			continue
		}
		ds = append(ds, time.Since(t0))
	}
	return ds
}

// oneSession opens a session, does one round trip and closes it; the client
// closes first, as browsers do.
func oneSession(ctx context.Context, d dialer, c credential, echo netip.AddrPort, msg, buf []byte) error {
	conn, err := d.dial(ctx, c, echo)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(d.timeout))
	if err := roundTrip(conn, msg, buf); err != nil {
		return &stepError{"io", err}
	}
	return nil
}

func (r *churnResult) table(w io.Writer) {
	fmt.Fprintf(w, "%s via %s: %d clients looping sessions, %.2f s\n", r.Scenario, r.Via, r.Clients, r.Seconds)
	fmt.Fprintf(w, "sessions  %d  (%.1f/s)\n", r.Sessions, r.PerSecond)
	fmt.Fprintln(w, "session time (connect to close):")
	writeSummary(w, r.SessionTime)
	if r.ProxyCPUMicros != nil {
		fmt.Fprintf(w, "proxy CPU %.0f µs per session\n", *r.ProxyCPUMicros)
	}
	fmt.Fprintf(w, "tool CPU  %.0f µs per session\n", r.ToolCPUMicros)
	fmt.Fprintf(w, "errors    %d %v\n", r.Errors, stepList(r.ErrorSteps))
	if r.TLS != nil {
		fmt.Fprintf(w, "TLS       %d handshakes, %d resumed\n", r.TLS.Handshakes, r.TLS.Resumed)
	}
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// settle is how long the proxy gets, after the last session opened, to finish
// its own bookkeeping before its memory is read again.
const settle = 500 * time.Millisecond

// idleResult is what an idle run measured: the proxy's memory with -sessions
// sessions open and idle, against its memory before.
type idleResult struct {
	Scenario   string         `json:"scenario"`
	Via        string         `json:"via"`
	Sessions   int            `json:"sessions"`
	Open       int            `json:"open"`
	OpenSecs   float64        `json:"open_seconds"`
	HoldSecs   float64        `json:"hold_seconds"`
	Before     *memory        `json:"before,omitempty"`
	After      *memory        `json:"after,omitempty"`
	RSSPerSess float64        `json:"rss_kib_per_session,omitempty"`
	PSSPerSess float64        `json:"pss_kib_per_session,omitempty"`
	FDsPerSess float64        `json:"fds_per_session,omitempty"`
	Errors     int            `json:"errors"`
	ErrorSteps map[string]int `json:"error_steps,omitempty"`
}

// runIdle opens -sessions sessions to the echo target (each with one round trip,
// so the relay is up), holds them for -hold, and reports the growth of the memory
// of -pid and its children per open session. It closes every session at the end.
func runIdle(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	need := uint64(2*o.sessions + 64)
	if got, err := raiseNofile(); err != nil || got < need {
		return nil, fmt.Errorf("RLIMIT_NOFILE is %d, %d descriptors are needed (%v); raise the hard limit (ulimit -Hn)", got, need, err)
	}
	t, err := startTargets(log)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	r := &idleResult{Scenario: "idle", Via: newDialer(o).via(), Sessions: o.sessions}
	if r.Before, err = readMemory(o.pid); err != nil {
		return nil, err
	}
	errs := newErrorCount(log)
	op := opener{d: newDialer(o), target: t.echo, errs: errs, prepare: echoOnce}
	start := time.Now()
	conns := op.open(ctx, roundRobin(o.users, o.sessions))
	defer closeAll(conns)
	r.OpenSecs = time.Since(start).Seconds()
	r.Open = live(conns)
	r.Errors, r.ErrorSteps = errs.counts()
	log.Debug("sessions open", "open", r.Open, "seconds", r.OpenSecs)
	if r.Open == 0 {
		return nil, errors.New("no session opened; see the errors above")
	}
	if err := r.hold(ctx, o); err != nil {
		return nil, err
	}
	return r, ctx.Err()
}

// hold waits, reads the memory after, and then holds the sessions for -hold.
func (r *idleResult) hold(ctx context.Context, o *options) error {
	if !sleepCtx(ctx, settle) {
		return ctx.Err()
	}
	var err error
	if r.After, err = readMemory(o.pid); err != nil {
		return err
	}
	if r.Before != nil && r.After != nil {
		r.RSSPerSess = float64(r.After.RSSKiB-r.Before.RSSKiB) / float64(r.Open)
		r.PSSPerSess = float64(r.After.PSSKiB-r.Before.PSSKiB) / float64(r.Open)
		r.FDsPerSess = float64(r.After.FDs-r.Before.FDs) / float64(r.Open)
	}
	start := time.Now()
	sleepCtx(ctx, o.hold)
	r.HoldSecs = time.Since(start).Seconds()
	return nil
}

// echoOnce does one round trip on a new session.
func echoOnce(_ int, c net.Conn) error {
	return roundTrip(c, pattern(echoSize), make([]byte, echoSize))
}

// readMemory reads the memory of pid's process tree, or returns nil without a pid.
func readMemory(pid int) (*memory, error) {
	if pid <= 0 {
		return nil, nil
	}
	m, err := treeMemory(pid)
	if err != nil {
		return nil, fmt.Errorf("-pid: %w", err)
	}
	return &m, nil
}

// sleepCtx sleeps for d and reports whether ctx was still live at the end.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *idleResult) table(w io.Writer) {
	fmt.Fprintf(w, "idle via %s: %d of %d sessions open in %.2f s, held %.2f s\n",
		r.Via, r.Open, r.Sessions, r.OpenSecs, r.HoldSecs)
	fmt.Fprintf(w, "errors  %d %v\n", r.Errors, stepList(r.ErrorSteps))
	if r.Before == nil || r.After == nil {
		fmt.Fprintln(w, "memory  not measured (no -pid)")
		return
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "proxy\tprocesses\tRSS KiB\tPSS KiB\tfds\t")
	fmt.Fprintf(tw, "before\t%d\t%d\t%d\t%d\t\n", r.Before.Processes, r.Before.RSSKiB, r.Before.PSSKiB, r.Before.FDs)
	fmt.Fprintf(tw, "after\t%d\t%d\t%d\t%d\t\n", r.After.Processes, r.After.RSSKiB, r.After.PSSKiB, r.After.FDs)
	fmt.Fprintf(tw, "per session\t\t%.2f\t%.2f\t%.2f\t\n", r.RSSPerSess, r.PSSPerSess, r.FDsPerSess)
	tw.Flush()
}

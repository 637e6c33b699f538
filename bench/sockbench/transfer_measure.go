package main

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// phase is what a measured phase recorded: each connection's bytes at its start
// and its end, and what the proxy and sockbench used in between.
type phase struct {
	from, to []mark
	elapsed  time.Duration
	proxyCPU *float64 // CPU seconds of the proxy's process tree; nil without -pid
	proxyMem *memory  // at the end; nil without -pid
	toolCPU  float64  // CPU seconds of sockbench itself
	// sourceWrites is how many writes the frame pacer made; fewer than the
	// frames due means late turns merged frames (sockbench short of CPU).
	sourceWrites int64
}

// measure lets data flow for warmup, then measures for d. Downloads with
// -read-every are read by a [readPoller]; everything else by a goroutine per
// connection.
func (tr *transfer) measure(ctx context.Context, warmup, d time.Duration) (phase, error) {
	var p phase
	var markAt func(k int) []mark
	if every := tr.o.calls.readEvery; every > 0 && !tr.up {
		now := time.Now()
		t0 := now.Add(warmup)
		tr.poller = newReadPoller(every, tr.conns, tr.counters, tr.errs, t0, t0.Add(d))
		if err := tr.beginPolled(ctx, now); err != nil {
			return p, err
		}
		markAt = tr.poller.wait
	} else {
		tr.begin(warmup + d)
		markAt = func(int) []mark { return tr.marks() }
	}
	t0 := tr.start.Add(warmup)
	if err := sleepUntil(ctx, t0); err != nil {
		return p, err
	}
	cpu0, hasCPU, err := proxyCPU(tr.o.pid)
	if err != nil {
		return p, err
	}
	tool0, writes0 := selfCPUSeconds(), tr.sourceWrites()
	p.from = markAt(0)
	if err := sleepUntil(ctx, t0.Add(d)); err != nil {
		return p, err
	}
	p.to = markAt(1)
	p.elapsed = time.Since(t0)
	p.toolCPU = selfCPUSeconds() - tool0
	p.sourceWrites = tr.sourceWrites() - writes0
	if hasCPU {
		cpu1, err := treeCPUSeconds(tr.o.pid)
		if err != nil {
			return p, fmt.Errorf("-pid: %w", err)
		}
		mem, err := treeMemory(tr.o.pid)
		if err != nil {
			return p, fmt.Errorf("-pid: %w", err)
		}
		secs := cpu1 - cpu0
		p.proxyCPU, p.proxyMem = &secs, &mem
	}
	return p, nil
}

// beginPolled sends each download its start byte and starts the poller; start
// is the time the phases are counted from.
func (tr *transfer) beginPolled(ctx context.Context, start time.Time) error {
	tr.start = start
	for i, c := range tr.conns {
		if c == nil {
			continue
		}
		c.SetWriteDeadline(time.Now().Add(tr.o.timeout))
		if _, err := c.Write([]byte{1}); err != nil {
			tr.errs.add(&stepError{"io", err})
			c.Close()
			tr.conns[i] = nil
		}
	}
	if live(tr.conns) == 0 {
		return fmt.Errorf("no download started; see the errors above")
	}
	tr.poller.start(ctx)
	return nil
}

// sourceWrites returns the frame pacer's writes so far; 0 without one.
func (tr *transfer) sourceWrites() int64 {
	if tr.frames == nil {
		return 0
	}
	return tr.frames.writes.Load()
}

// marks reads every connection's counter now; failed sessions are -1.
func (tr *transfer) marks() []mark {
	now := time.Now()
	out := make([]mark, len(tr.conns))
	for i, b := range tr.perConn() {
		out[i] = mark{bytes: b, at: now}
	}
	return out
}

// moved returns each connection's bytes and seconds between the marks of p; a
// connection that failed has -1 bytes.
func (p phase) moved() (bytes []int64, secs []float64) {
	bytes, secs = make([]int64, len(p.from)), make([]float64, len(p.from))
	for i := range p.from {
		bytes[i], secs[i] = -1, p.to[i].at.Sub(p.from[i].at).Seconds()
		if p.from[i].bytes >= 0 && p.to[i].bytes >= 0 {
			bytes[i] = p.to[i].bytes - p.from[i].bytes
		}
	}
	return bytes, secs
}

// sleepUntil returns at t, or with ctx's error when it ends first.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// selfCPUSeconds returns the user and system CPU seconds sockbench has used.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

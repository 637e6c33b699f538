package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// sampleEvery is how often the total byte count is sampled: four samples per
// 200 ms window, so a window's edges are off by at most an eighth of it.
const sampleEvery = 50 * time.Millisecond

// transfer is one bulk run: conns parallel sessions that all download from the
// source target, or all upload to the sink target, for a measured phase.
type transfer struct {
	o        *options
	log      *slog.Logger
	up       bool
	conns    []net.Conn      // nil where the session failed to open
	counters []*atomic.Int64 // bytes moved per connection in the measured phase
	errs     *errorCount
	startCh  chan struct{} // closed when the measured phase begins
	start    time.Time     // set before startCh is closed
	wg       sync.WaitGroup
	poller   *readPoller // reads the downloads instead of wg's workers with -read-every
	frames   *framePacer // the source's, when it paces per connection; else nil
}

// newTransfer opens the sessions of a download (up false) or upload run. It
// fails only when no session opened.
func newTransfer(ctx context.Context, o *options, log *slog.Logger, t *targets, up bool) (*transfer, error) {
	tr := &transfer{o: o, log: log, up: up, errs: newErrorCount(log), startCh: make(chan struct{})}
	tr.counters = make([]*atomic.Int64, len(o.perConn))
	for i := range tr.counters {
		tr.counters[i] = new(atomic.Int64)
		if up {
			tr.counters[i] = t.sinkCounter(uint64(i))
		}
	}
	op := opener{d: newDialer(o), target: t.source, errs: tr.errs}
	if up {
		op.target, op.prepare = t.sink, writeID
	}
	tr.conns = op.open(ctx, o.perConn)
	if live(tr.conns) == 0 {
		return nil, errors.New("no session opened; see the errors above")
	}
	log.Debug("sessions open", "live", live(tr.conns), "want", len(tr.conns))
	return tr, nil
}

// writeID sends the connection id the sink counts bytes under.
func writeID(i int, c net.Conn) error {
	_, err := c.Write(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return err
}

// begin starts a measured phase of length d and returns at once. Every session
// stops moving bytes when d has passed.
func (tr *transfer) begin(d time.Duration) {
	tr.start = time.Now()
	end := tr.start.Add(d)
	perConn := float64(tr.o.clientBps) / float64(live(tr.conns))
	for i, c := range tr.conns {
		if c == nil {
			continue
		}
		c.SetDeadline(end)
		tr.wg.Go(func() { tr.work(c, tr.counters[i], perConn) })
	}
	close(tr.startCh)
}

// work moves bytes on one session until its deadline, pacing to bps when bps > 0.
func (tr *transfer) work(c net.Conn, counter *atomic.Int64, bps float64) {
	<-tr.startCh
	var err error
	if tr.up {
		err = pump(c.Write, counter, bps, tr.start, false)
	} else if _, err = c.Write([]byte{1}); err == nil {
		err = pump(c.Read, counter, bps, tr.start, true)
	}
	if err != nil && !endedByDeadline(err) {
		tr.errs.add(&stepError{"io", err})
	}
}

// pump calls step (a Read or a Write) with a chunk until it fails. Upload counts
// are kept by the sink; count is set for downloads.
func pump(step func([]byte) (int, error), counter *atomic.Int64, bps float64, start time.Time, count bool) error {
	buf := pattern(chunk)
	var moved int64
	for {
		n, err := step(buf)
		moved += int64(n)
		if count {
			counter.Add(int64(n))
		}
		if err != nil {
			return err
		}
		if bps > 0 {
			due := start.Add(time.Duration(float64(moved) / bps * float64(time.Second)))
			time.Sleep(time.Until(due))
		}
	}
}

// sampleUntil samples the total every [sampleEvery] until d after the start or
// until ctx ends, and returns the samples; the last one is at the end.
func (tr *transfer) sampleUntil(ctx context.Context, d time.Duration) []sample {
	tick := time.NewTicker(sampleEvery)
	defer tick.Stop()
	end := time.NewTimer(time.Until(tr.start.Add(d)))
	defer end.Stop()
	samples := []sample{{at: 0, bytes: 0}}
	for {
		select {
		case <-tick.C:
			samples = append(samples, tr.sample())
		case <-end.C:
			return append(samples, tr.sample())
		case <-ctx.Done():
			return append(samples, tr.sample())
		}
	}
}

func (tr *transfer) sample() sample {
	var total int64
	for _, c := range tr.counters {
		total += c.Load()
	}
	return sample{at: time.Since(tr.start), bytes: total}
}

// finish closes every session and waits for the workers.
func (tr *transfer) finish() {
	closeAll(tr.conns)
	tr.wg.Wait()
	if tr.poller != nil {
		tr.poller.stop()
	}
}

// perConn returns each live session's bytes at this moment, by index; failed
// sessions are -1.
func (tr *transfer) perConn() []int64 {
	out := make([]int64, len(tr.conns))
	for i, c := range tr.conns {
		out[i] = -1
		if c != nil {
			out[i] = tr.counters[i].Load()
		}
	}
	return out
}

// runDownload measures parallel downloads from the source target.
func runDownload(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	return runTransfer(ctx, o, log, false)
}

// runUpload measures parallel uploads to the sink target.
func runUpload(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	return runTransfer(ctx, o, log, true)
}

func runTransfer(ctx context.Context, o *options, log *slog.Logger, up bool) (result, error) {
	if need := uint64(2*o.conns + 64); o.conns > 256 {
		if got, err := raiseNofile(); err != nil || got < need {
			return nil, fmt.Errorf("RLIMIT_NOFILE is %d, %d descriptors are needed (%v); raise the hard limit (ulimit -Hn)", got, need, err)
		}
	}
	t, err := startTargets(log)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	if o.sourceBps > 0 {
		t.sourceBps = float64(o.sourceBps) / float64(o.conns)
	}
	if o.calls.sourceConn > 0 {
		t.paceFrames(o.calls.sourceConn, o.calls.frame)
	}
	mem0, err := readMemory(o.pid)
	if err != nil {
		return nil, err
	}
	tr, err := newTransfer(ctx, o, log, t, up)
	if err != nil {
		return nil, err
	}
	defer tr.finish()
	defer o.tls.tlsClientOf(o).Close()
	tr.frames = t.frames
	p, err := tr.measure(ctx, o.calls.warmup, o.duration)
	if err != nil {
		return nil, err
	}
	bytes, secs := p.moved()
	res := newTransferResult(o, up, bytes, secs, p.elapsed, tr.errs)
	res.setPhase(o, p)
	res.setMemoryPerConn(mem0, p.proxyMem)
	return res, ctx.Err()
}

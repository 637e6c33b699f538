package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// pollShards is how many goroutines share the polled connections.
const pollShards = 8

// mark is a connection's byte count at a moment: a measured phase's rate is the
// bytes between two marks over the time between them. bytes is -1 for a
// connection that failed.
type mark struct {
	bytes int64
	at    time.Time
}

// readPoller reads downloads without one blocked goroutine per connection:
// every [readPoller.every] each shard reads what each of its connections has
// queued, without waiting, into the connection's counter. For thousands of
// sessions at call rates this costs a read per connection per poll instead of a
// goroutine wake-up and two reads per arriving frame, which would make sockbench
// the bottleneck. The proxy's side is the same either way: its writes land in
// the client's socket buffer, which a poll empties long before it fills.
//
// The poller marks every connection right after reading it at its first poll
// at or after each of the times given, so that a connection's rate over the
// measured phase is exact to the read, not to the poll.
type readPoller struct {
	every    time.Duration
	conns    []net.Conn
	counters []*atomic.Int64
	errs     *errorCount
	at       []time.Time // when to mark, in order
	marks    [][]mark    // marks[k][i]: connection i at time at[k]
	marked   []sync.WaitGroup
	wg       sync.WaitGroup
}

// newReadPoller prepares polling conns (nil where a session failed) into
// counters, with a mark at each of at (in time order). start starts it.
func newReadPoller(every time.Duration, conns []net.Conn, counters []*atomic.Int64, errs *errorCount, at ...time.Time) *readPoller {
	p := &readPoller{every: every, conns: conns, counters: counters, errs: errs, at: at,
		marks: make([][]mark, len(at)), marked: make([]sync.WaitGroup, len(at))}
	for k := range at {
		p.marks[k] = make([]mark, len(conns))
		for i := range p.marks[k] {
			p.marks[k][i] = mark{bytes: -1, at: at[k]}
		}
	}
	return p
}

// start polls until the last mark is taken or ctx ends.
func (p *readPoller) start(ctx context.Context) {
	n := min(pollShards, len(p.conns))
	for k := range p.at {
		p.marked[k].Add(n)
	}
	for s := range n {
		var mine []int
		for i := s; i < len(p.conns); i += n {
			if p.conns[i] != nil {
				mine = append(mine, i)
			}
		}
		p.wg.Go(func() { p.run(ctx, mine) })
	}
}

// wait blocks until every shard took mark k and returns the marks.
func (p *readPoller) wait(k int) []mark {
	p.marked[k].Wait()
	return p.marks[k]
}

// stop waits for the shards, which end by themselves after the last mark.
func (p *readPoller) stop() { p.wg.Wait() }

func (p *readPoller) run(ctx context.Context, mine []int) {
	raws := make([]syscall.RawConn, len(p.conns))
	for _, i := range mine {
		if sc, ok := p.conns[i].(syscall.Conn); ok {
			raws[i], _ = sc.SyscallConn()
		}
	}
	buf := make([]byte, chunk)
	tick := time.NewTicker(p.every)
	defer tick.Stop()
	next := 0 // the next mark to take
	for next < len(p.at) {
		select {
		case <-tick.C:
		case <-ctx.Done():
			for ; next < len(p.at); next++ {
				p.marked[next].Done() // unmarked: the connections count as failed
			}
			return
		}
		marking := !time.Now().Before(p.at[next])
		for _, i := range mine {
			if raws[i] == nil {
				continue
			}
			if err := p.drain(raws[i], buf, p.counters[i]); err != nil {
				p.errs.add(&stepError{"io", err})
				raws[i] = nil
				continue
			}
			if marking {
				p.marks[next][i] = mark{bytes: p.counters[i].Load(), at: time.Now()}
			}
		}
		if marking {
			p.marked[next].Done()
			next++
		}
	}
}

// drain reads everything raw has queued into counter without waiting. The
// peer closing is an error: a download ends only when sockbench closes it.
func (p *readPoller) drain(raw syscall.RawConn, buf []byte, counter *atomic.Int64) error {
	for {
		var n int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), buf)
			return true
		}); err != nil {
			return err
		}
		switch {
		case errors.Is(rerr, syscall.EAGAIN):
			return nil
		case rerr != nil:
			return rerr
		case n == 0:
			return fmt.Errorf("closed by the peer: %w", io.EOF)
		}
		counter.Add(int64(n))
		if n < len(buf) {
			return nil
		}
	}
}

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// callStampLen is the stamp at the front of a call's datagram: the call (4
// bytes), the frame's number (4), its scheduled send time since the run began
// (8, nanoseconds) and the time it was actually sent (8): the difference is the
// sender's lateness, which a loaded machine adds to every path alike.
const callStampLen = 24

// udpCall is one call of the udp-calls scenario: the client's end, through an
// association of its own (or straight with -direct), and the far end, a socket
// of its own that sends media back once the client's first datagram has told
// it where the client is, as a call's far end does once its path is set up.
type udpCall struct {
	id      uint32
	client  *udpAssociation
	far     *net.UDPConn
	farTo   atomic.Pointer[netip.AddrPort] // learned from the first datagram
	phase   time.Duration                  // the call's offset within a frame
	up      callDirection                  // client to far end
	down    callDirection                  // far end to client
	upMsg   []byte                         // header (through a proxy) and payload
	downMsg []byte
}

// callDirection is one direction of a call. sent and sendErrs belong to the
// pacer, the rest to the receiver; both are read once they have stopped.
type callDirection struct {
	sent, sendErrs         int64 // datagrams scheduled in the measured phase
	received, bad          int64 // of those, received; datagrams not of this call
	lastDelay, lastTransit time.Duration
	hasLast                bool
}

// callStats are the distributions of the whole run.
type callStats struct {
	jitter   histogram // |delay - previous datagram's delay|, per datagram received
	transit  histogram // the same against the actual send times: the path alone
	delay    histogram // arrival - scheduled send
	lateness histogram // actual send - scheduled send, at the senders
}

// callClock is the run's schedule: media starts at start, is measured from
// start+warmup for duration.
type callClock struct {
	start            time.Time
	warmup, duration time.Duration
}

func (c callClock) measured(at time.Duration) bool {
	return at >= c.warmup && at < c.warmup+c.duration
}

// runUDPCalls carries -conns calls' media both ways: each end sends one
// datagram of -size bytes every -frame, at the call's own phase, and the
// receiver of each direction measures loss and the jitter against the
// sender's schedule.
func runUDPCalls(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	if got, err := raiseNofile(); err != nil || got < uint64(3*o.conns+64) {
		return nil, fmt.Errorf("%d calls need %d descriptors here, the limit is %d (%v)", o.conns, 3*o.conns+64, got, err)
	}
	var mem0 memory
	if o.pid > 0 {
		mem0, _ = treeMemory(o.pid)
	}
	errs := newErrorCount(log)
	calls, firstErr := openCalls(ctx, o, errs)
	defer closeCalls(calls)
	live := liveCalls(calls)
	if len(live) == 0 {
		return nil, fmt.Errorf("no call set up: %w", firstErr)
	}
	st := &callStats{}
	clk := callClock{start: time.Now().Add(10 * time.Millisecond), warmup: o.udpCalls.warmup, duration: o.duration}
	var receivers sync.WaitGroup
	for _, c := range live {
		receivers.Go(func() { c.receiveClient(st, clk, o.direct) })
		receivers.Go(func() { c.receiveFar(st, clk) })
	}
	var pacers sync.WaitGroup
	for _, shard := range callShards(live, o.udpCalls.frame) {
		pacers.Go(func() { pace(ctx, shard, st, clk, o.udpCalls.frame) })
	}
	m := measureCalls(ctx, o, clk, mem0)
	pacers.Wait()
	select {
	case <-time.After(o.udpCalls.drain):
	case <-ctx.Done():
	}
	closeCalls(calls)
	receivers.Wait()
	return newCallsResult(o, calls, st, m, errs), ctx.Err()
}

// openCalls sets up every call, dialParallel at a time: the far end's socket,
// then the client's association (as user i of -users round robin) toward it.
func openCalls(ctx context.Context, o *options, errs *errorCount) ([]*udpCall, error) {
	calls := make([]*udpCall, o.conns)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	sem := make(chan struct{}, dialParallel)
	for i, cred := range o.perConn {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, err := openCall(ctx, o, uint32(i), cred)
			if err != nil {
				errs.add(err)
				mu.Lock()
				first = cmpOr(first, err)
				mu.Unlock()
				return
			}
			calls[i] = c
		})
	}
	wg.Wait()
	return calls, first
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func openCall(ctx context.Context, o *options, id uint32, cred credential) (*udpCall, error) {
	far, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.udpCalls.far, 0)))
	if err != nil {
		return nil, &stepError{"dial", fmt.Errorf("far end: %w", err)}
	}
	a, err := associate(ctx, o, cred, addrPortOf(far.LocalAddr()))
	if err != nil {
		far.Close()
		return nil, err
	}
	c := &udpCall{id: id, client: a, far: far}
	c.upMsg = append(append([]byte(nil), a.header...), pattern(o.udpCalls.size)...)
	c.downMsg = pattern(o.udpCalls.size)
	binary.BigEndian.PutUint32(c.upMsg[len(a.header):], id)
	binary.BigEndian.PutUint32(c.downMsg, id)
	return c, nil
}

func liveCalls(calls []*udpCall) []*udpCall {
	var live []*udpCall
	for _, c := range calls {
		if c != nil {
			live = append(live, c)
		}
	}
	return live
}

func closeCalls(calls []*udpCall) {
	for _, c := range calls {
		if c != nil {
			c.client.close()
			c.far.Close()
		}
	}
}

// callMeasure is the proxy's and this tool's cost over the measured phase.
type callMeasure struct {
	proxyCPU, toolCPU float64 // seconds
	hasProxy          bool
	mem0, mem1        memory
}

// measureCalls waits out the warm-up, then reads the CPU times at the start
// and at the end of the measured phase, and the proxy's memory at its end.
func measureCalls(ctx context.Context, o *options, clk callClock, mem0 memory) callMeasure {
	m := callMeasure{mem0: mem0}
	sleepUntil(ctx, clk.start.Add(clk.warmup))
	p0, perr := treeCPUSeconds(o.pid)
	t0, _ := treeCPUSeconds(os.Getpid())
	sleepUntil(ctx, clk.start.Add(clk.warmup+clk.duration))
	t1, _ := treeCPUSeconds(os.Getpid())
	m.toolCPU = t1 - t0
	if o.pid > 0 && perr == nil {
		if p1, err := treeCPUSeconds(o.pid); err == nil {
			m.proxyCPU, m.hasProxy = p1-p0, true
		}
		m.mem1, _ = treeMemory(o.pid)
	}
	return m
}

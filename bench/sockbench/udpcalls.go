package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
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

// callEvent is a datagram a pacer sends every frame: one direction of a call,
// at an offset within the frame.
type callEvent struct {
	call   *udpCall
	up     bool
	offset time.Duration
}

// callShards spreads the calls' phases evenly over a frame and deals them to
// a few pacers, each with its events in time order: the client's datagram at
// the call's phase, the far end's half a frame later. The load is then smooth
// and no pacer has more than its share.
func callShards(live []*udpCall, frame time.Duration) [][]callEvent {
	const pacers = 4
	shards := make([][]callEvent, min(pacers, len(live)))
	for i, c := range live {
		c.phase = frame * time.Duration(i) / time.Duration(len(live))
		shards[i%len(shards)] = append(shards[i%len(shards)], callEvent{call: c, up: true, offset: c.phase})
	}
	for s, evs := range shards {
		n := len(evs)
		for i := range n { // the far ends' half a frame later, wrapping around
			ev := callEvent{call: evs[i].call, offset: (evs[i].offset + frame/2) % frame}
			evs = append(evs, ev)
		}
		slices.SortStableFunc(evs, func(a, b callEvent) int { return cmp.Compare(a.offset, b.offset) })
		shards[s] = evs
	}
	return shards
}

// pace sends its events' datagrams on their schedule until the measured phase
// ends. A pacer that falls behind sends at once what is due, and the receivers
// see the lateness as delay and jitter.
func pace(ctx context.Context, events []callEvent, st *callStats, clk callClock, frame time.Duration) {
	end := clk.warmup + clk.duration
	for k := 0; ; k++ {
		base := time.Duration(k) * frame
		if base >= end || ctx.Err() != nil {
			return
		}
		for _, ev := range events {
			at := base + ev.offset
			if d := time.Until(clk.start.Add(at)); d > 50*time.Microsecond {
				time.Sleep(d)
			}
			ev.call.send(ev.up, uint32(k), at, st, clk)
		}
	}
}

// send sends frame k of one direction, stamped with its scheduled time at.
func (c *udpCall) send(up bool, k uint32, at time.Duration, st *callStats, clk callClock) {
	msg, stamp, dir := c.downMsg, c.downMsg, &c.down
	sock, to := c.far, netip.AddrPort{}
	if up {
		msg, stamp, dir = c.upMsg, c.upMsg[len(c.client.header):], &c.up
		sock, to = c.client.sock, c.client.to
	} else if p := c.farTo.Load(); p != nil {
		to = *p
	} else {
		return // the far end does not know the client yet
	}
	binary.BigEndian.PutUint32(stamp[4:], k)
	binary.BigEndian.PutUint64(stamp[8:], uint64(at))
	now := time.Since(clk.start)
	binary.BigEndian.PutUint64(stamp[16:], uint64(now))
	_, err := sock.WriteToUDPAddrPort(msg, to)
	st.lateness.add(now - at)
	if clk.measured(at) {
		dir.sent++
		if err != nil {
			dir.sendErrs++
		}
	}
}

// receiveClient reads what reaches the client: the far end's media, through
// the relay with its header, or straight with -direct.
func (c *udpCall) receiveClient(st *callStats, clk callClock, direct bool) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := c.client.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		b := buf[:n]
		if !direct {
			r, err := parseUDPReply(b)
			if err != nil {
				c.down.bad++
				continue
			}
			b = r.payload
		}
		if from != c.client.to {
			c.down.bad++
			continue
		}
		c.down.record(c.id, b, st, clk)
	}
}

// receiveFar reads what reaches the far end, and learns from the first
// datagram where to send its own media.
func (c *udpCall) receiveFar(st *callStats, clk callClock) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := c.far.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if c.farTo.Load() == nil {
			c.farTo.Store(&from)
		}
		c.up.record(c.id, buf[:n], st, clk)
	}
}

// record counts one datagram received at now: a datagram of the measured
// phase counts as received, and its delay against the previous datagram's
// is its jitter.
func (d *callDirection) record(id uint32, b []byte, st *callStats, clk callClock) {
	now := time.Since(clk.start)
	if len(b) < callStampLen || binary.BigEndian.Uint32(b) != id {
		d.bad++
		return
	}
	at := time.Duration(binary.BigEndian.Uint64(b[8:]))
	delay, transit := now-at, now-time.Duration(binary.BigEndian.Uint64(b[16:]))
	if clk.measured(at) {
		d.received++
		st.delay.add(delay)
		if d.hasLast {
			st.jitter.add((delay - d.lastDelay).Abs())
			st.transit.add((transit - d.lastTransit).Abs())
		}
	}
	d.lastDelay, d.lastTransit, d.hasLast = delay, transit, true
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

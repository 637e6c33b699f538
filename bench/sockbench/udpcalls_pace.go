package main

import (
	"cmp"
	"context"
	"encoding/binary"
	"net/netip"
	"slices"
	"time"
)

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

package main

import (
	"encoding/binary"
	"errors"
	"net"
	"time"
)

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

package main

import (
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// chunk is the size of one read or write of the bulk paths: large enough that
// syscalls are not the bottleneck, small enough to pace smoothly.
const chunk = 32 << 10

// echoSize is the request and response size of the latency, churn and idle
// scenarios.
const echoSize = 64

// targets are the servers sockbench connects to, all on 127.0.0.1:
//
//   - source: waits for one byte from the client, then writes until the
//     connection closes, so no byte is in flight before the measured phase;
//     paced to sourceBps per connection when that is set;
//   - sink: reads an 8-byte big-endian connection id, then counts every further
//     byte into that id's counter (see [targets.sinkCounter]);
//   - echo: writes back whatever it reads;
//   - web: answers one HTTP request with 64 bytes and closes.
//
// Close stops all four and waits for every connection handler.
type targets struct {
	log    *slog.Logger
	source netip.AddrPort
	sink   netip.AddrPort
	echo   netip.AddrPort
	web    netip.AddrPort // answers one HTTP request with 64 bytes and closes
	// sourceBps paces each source connection, bytes/s; 0: as fast as possible.
	// Set before the first connection.
	sourceBps float64
	// frames, when set, paces each source connection in frames instead; set
	// with [targets.paceFrames] before the first connection.
	frames *framePacer

	lns []net.Listener
	wg  sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	counts map[uint64]*atomic.Int64
	closed bool
}

// startTargets listens on four ports of 127.0.0.1 and serves them until Close.
func startTargets(log *slog.Logger) (*targets, error) {
	t := &targets{log: log, conns: map[net.Conn]struct{}{}, counts: map[uint64]*atomic.Int64{}}
	handlers := []struct {
		addr  *netip.AddrPort
		serve func(net.Conn)
	}{{&t.source, t.serveSource}, {&t.sink, t.serveSink}, {&t.echo, serveEcho}, {&t.web, serveWeb}}
	for _, h := range handlers {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Close()
			return nil, err
		}
		t.lns = append(t.lns, ln)
		*h.addr = ln.Addr().(*net.TCPAddr).AddrPort()
		t.wg.Go(func() { t.accept(ln, h.serve) })
	}
	return t, nil
}

// Close closes the listeners and every open target connection, then waits for
// their handlers to return.
func (t *targets) Close() {
	t.mu.Lock()
	t.closed = true
	for _, ln := range t.lns {
		ln.Close()
	}
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	if t.frames != nil {
		t.frames.close()
	}
}

// paceFrames makes every source connection send bps in frames of bps × frame
// bytes, one per frame. Call it before the first connection.
func (t *targets) paceFrames(bps int64, frame time.Duration) {
	t.frames = newFramePacer(bps, frame)
}

func (t *targets) accept(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.log.Error("target accept", "err", err)
			}
			return
		}
		if !t.track(c) {
			c.Close()
			return
		}
		t.wg.Go(func() {
			defer t.untrack(c)
			serve(c)
		})
	}
}

// track records c for Close; it reports whether the targets are still open.
func (t *targets) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *targets) untrack(c net.Conn) {
	c.Close()
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// sinkCounter returns the counter of sink connection id, creating it if needed.
// Safe for concurrent use.
func (t *targets) sinkCounter(id uint64) *atomic.Int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, ok := t.counts[id]
	if !ok {
		c = new(atomic.Int64)
		t.counts[id] = c
	}
	return c
}

func (t *targets) serveSource(c net.Conn) {
	var start [1]byte
	if _, err := io.ReadFull(c, start[:]); err != nil {
		return
	}
	if t.frames != nil {
		if err := t.frames.add(c); err != nil {
			t.log.Error("frame pacing", "err", err)
			return
		}
		io.Copy(io.Discard, c) // returns when the connection closes
		return
	}
	pump(c.Write, nil, t.sourceBps, time.Now(), false)
}

func (t *targets) serveSink(c net.Conn) {
	var id [8]byte
	if _, err := io.ReadFull(c, id[:]); err != nil {
		return
	}
	counter := t.sinkCounter(binary.BigEndian.Uint64(id[:]))
	buf := make([]byte, chunk)
	for {
		n, err := c.Read(buf)
		counter.Add(int64(n))
		if err != nil {
			return
		}
	}
}

// serveEcho writes back what it reads with a plain loop: io.Copy would try
// splice(2) from the socket to itself, which buys nothing for 64-byte messages.
func serveEcho(c net.Conn) {
	buf := make([]byte, 4<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pattern returns n bytes that are not all zero, so no layer can compress them
// away.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*131 + i>>8)
	}
	return b
}

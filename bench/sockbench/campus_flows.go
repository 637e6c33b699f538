package main

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// flowKind is what a long-lived flow carries. Each has data waiting at its source
// all the time, so a window in which it moves no byte is a starved session.
type flowKind int

const (
	flowHeavy    flowKind = iota // a heavy user's download (unpaced)
	flowDownload                 // a downloader's download (unpaced)
	flowBulk                     // an unpaced skype-class download
	flowCallTCP                  // a call's TCP media, paced by its source
	flowCallUDP                  // a call's UDP media, paced by the client, echoed
	flowHog                      // a hog's download (unpaced, no limit of the user's own)
	flowKinds
)

func (k flowKind) String() string {
	switch k {
	case flowHeavy:
		return "heavy"
	case flowDownload:
		return "download"
	case flowBulk:
		return "skype_bulk"
	case flowCallTCP:
		return "call_tcp"
	case flowCallUDP:
		return "call_udp"
	case flowHog:
		return "hog"
	}
	return "unknown"
}

// flow is one long-lived session. Its counters are written by its goroutines
// and read at window edges.
type flow struct {
	kind    flowKind
	user    int   // index in the mix
	offered int64 // bytes/s of a paced flow; 0 for unpaced ones
	bytes   atomic.Int64
	sent    atomic.Int64 // UDP payload sent
	opened  atomic.Int64 // UnixNano when established; 0 before
	ended   atomic.Int64 // UnixNano when it failed; 0 while it runs
}

// newFlows returns the long-lived flows of the mix.
func newFlows(m *campusMix) []*flow {
	var fs []*flow
	add := func(kind flowKind, user, n int, offered int64) {
		for range n {
			fs = append(fs, &flow{kind: kind, user: user, offered: offered})
		}
	}
	for _, u := range m.hog {
		add(flowHog, u, m.hogSess, 0)
	}
	for _, u := range m.heavy {
		add(flowHeavy, u, m.heavySess, 0)
	}
	for _, u := range m.download {
		add(flowDownload, u, m.dlSess, 0)
	}
	for _, u := range m.bulk {
		add(flowBulk, u, 1, 0)
	}
	for j, u := range m.call {
		tcp, udp := callRates(j)
		add(flowCallTCP, u, 1, tcp)
		add(flowCallUDP, u, 1, udp)
	}
	return fs
}

// openSlot bounds the handshakes in flight while the flows open, and tells
// when each flow has opened or failed to.
type openSlot struct {
	slots chan struct{}
	done  func()
}

func (s openSlot) acquire() { s.slots <- struct{}{} }

// release frees the slot and reports the flow open (or failed); call it once.
func (s openSlot) release() {
	<-s.slots
	s.done()
}

// runFlow opens f in a slot, so logins come at a bounded pace, then moves its
// bytes until ctx ends or the session fails. Failures before ctx ends are
// counted and end the flow.
func (cs *campus) runFlow(ctx context.Context, f *flow, slot openSlot) {
	var err error
	switch f.kind {
	case flowCallUDP:
		err = cs.runUDPCall(ctx, f, slot)
	default:
		err = cs.runTCPFlow(ctx, f, slot)
	}
	if err != nil && ctx.Err() == nil {
		f.ended.Store(time.Now().UnixNano())
		cs.events.fail(f.kind.String(), err)
	}
}

// runTCPFlow downloads from the flow's source until ctx ends or the session
// fails.
func (cs *campus) runTCPFlow(ctx context.Context, f *flow, slot openSlot) error {
	target, start := cs.targets.download, []byte{1}
	switch f.kind {
	case flowBulk:
		target = cs.targets.bulk
	case flowCallTCP:
		target, start = cs.targets.call, binary.BigEndian.AppendUint32(nil, uint32(f.offered))
	}
	slot.acquire()
	conn, err := cs.dialLogin(ctx, f.user, target)
	if err == nil {
		if _, err = conn.Write(start); err != nil {
			conn.Close()
			err = &stepError{"io", err}
		}
	}
	slot.release()
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	f.opened.Store(time.Now().UnixNano())
	return countReads(conn, f)
}

// dialLogin opens a session as user to target from the user's address and
// records the handshake as a real login.
func (cs *campus) dialLogin(ctx context.Context, user int, target netip.AddrPort) (net.Conn, error) {
	t0 := time.Now()
	conn, err := cs.dialer(user).dial(ctx, cs.cred(user), target)
	if err != nil {
		return nil, err
	}
	cs.events.login(time.Since(t0))
	return conn, nil
}

// countReads reads c until it fails, counting the bytes into f.
func countReads(c net.Conn, f *flow) error {
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		f.bytes.Add(int64(n))
		if err != nil {
			return &stepError{"io", err}
		}
	}
}

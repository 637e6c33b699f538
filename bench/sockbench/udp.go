package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxAssociations caps -conns for the udp scenario: each association keeps a
// ring of send times (128 KiB) and a socket pair.
const maxAssociations = 1024

// minUDPSize is the smallest -size: the payload carries a sequence number and a
// send time.
const minUDPSize = stampLen

// maxUDPSize is the largest -size that fits a loopback datagram with the header.
const maxUDPSize = 60000

// errAssociationEnded is the proxy closing an association's control connection
// while datagrams still flowed.
var errAssociationEnded = errors.New("the proxy closed the control connection")

// udpAssociation is one client of the udp scenario: its UDP socket, where its
// datagrams go (the relay, or the echo itself with -direct), the header in front
// of each (none with -direct), and the control connection that keeps a proxied
// association alive.
type udpAssociation struct {
	sock   *net.UDPConn
	to     netip.AddrPort
	header []byte
	ctl    net.Conn // nil with -direct
	ended  atomic.Bool
	done   atomic.Bool
}

// runUDP measures a UDP ASSOCIATE relay: -conns associations, each keeping
// -window datagrams of -size bytes in flight to a UDP echo for -duration.
func runUDP(ctx context.Context, o *options, log *slog.Logger) (result, error) {
	echoes, err := startUDPEchoes(o.conns)
	defer echoes.Close()
	if err != nil {
		return nil, err
	}
	errs := newErrorCount(log)
	assocs, firstErr := openAssociations(ctx, o, echoes, errs)
	defer func() {
		for _, a := range assocs {
			if a != nil {
				a.close()
			}
		}
	}()
	if countLive(assocs) == 0 {
		return nil, fmt.Errorf("no association opened: %w", firstErr)
	}
	cpu0, hasCPU, err := proxyCPU(o.pid)
	if err != nil {
		return nil, err
	}
	flights := make([]*udpFlight, len(assocs))
	limit := uint64(maxRoundTrips / len(assocs))
	start := time.Now()
	var wg sync.WaitGroup
	for i, a := range assocs {
		if a == nil {
			continue
		}
		f := newUDPFlight(o.window, o.lossTimeout, limit)
		flights[i] = f
		wg.Go(func() {
			if err := a.run(ctx, f, o.size, start, o.duration); err != nil {
				errs.add(err)
			}
		})
	}
	wg.Wait()
	elapsed := min(time.Since(start), o.duration)
	res := newUDPResult(o, flights, elapsed, echoes.count(), errs)
	if hasCPU {
		cpu1, err := treeCPUSeconds(o.pid)
		if err != nil {
			return nil, err
		}
		res.setCPU(cpu1 - cpu0)
	}
	return res, ctx.Err()
}

// openAssociations opens one association per -conns, in parallel, and returns
// them by index (nil for a failed one) and the first error. Association i sends
// to echo i.
func openAssociations(ctx context.Context, o *options, echoes udpEchoes, errs *errorCount) ([]*udpAssociation, error) {
	assocs := make([]*udpAssociation, len(o.perConn))
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	sem := make(chan struct{}, dialParallel)
	for i, c := range o.perConn {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			a, err := associate(ctx, o, c, echoes[i].addr)
			if err != nil {
				errs.add(err)
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
				return
			}
			assocs[i] = a
		})
	}
	wg.Wait()
	return assocs, first
}

// associate opens one association as c: a UDP socket on 127.0.0.1 and, unless
// -direct, a control connection that asks for UDP ASSOCIATE from that socket.
func associate(ctx context.Context, o *options, c credential, echo netip.AddrPort) (*udpAssociation, error) {
	sock, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil, &stepError{"dial", err}
	}
	a := &udpAssociation{sock: sock, to: echo}
	if o.direct {
		return a, nil
	}
	nd := net.Dialer{Timeout: o.timeout}
	ctl, err := nd.DialContext(ctx, "tcp", o.proxy)
	if err != nil {
		sock.Close()
		return nil, &stepError{"dial", err}
	}
	a.ctl = ctl
	ctl.SetDeadline(time.Now().Add(o.timeout))
	relay, err := associateHandshake(ctl, c, addrPortOf(sock.LocalAddr()))
	if err != nil {
		a.close()
		return nil, err
	}
	ctl.SetDeadline(time.Time{})
	if relay.Addr().IsUnspecified() {
		relay = netip.AddrPortFrom(addrPortOf(ctl.RemoteAddr()).Addr(), relay.Port())
	}
	a.to, a.header = relay, appendUDPHeader(nil, echo)
	go a.watchControl()
	return a, nil
}

// watchControl waits on the control connection, where a proxy sends nothing;
// when the proxy closes it before the run is done, the association has ended and
// the socket is closed so that the run stops at once.
func (a *udpAssociation) watchControl() {
	var b [1]byte
	a.ctl.Read(b[:])
	if !a.done.Load() {
		a.ended.Store(true)
		a.sock.Close()
	}
}

func (a *udpAssociation) close() {
	a.done.Store(true)
	if a.ctl != nil {
		a.ctl.Close()
	}
	a.sock.Close()
}

// run keeps f's window full for duration from start, then waits up to the loss
// timeout for the datagrams still in flight. Every datagram is the header, then a
// payload of size bytes: sequence number, send time, and a fixed pattern.
func (a *udpAssociation) run(ctx context.Context, f *udpFlight, size int, start time.Time, duration time.Duration) error {
	msg := append(append([]byte(nil), a.header...), pattern(size)...)
	payload := msg[len(a.header):]
	want := pattern(size)
	buf := make([]byte, 64<<10)
	drainEnd := duration + f.timeout
	for {
		now := time.Since(start)
		inRun := now < duration && ctx.Err() == nil
		deadline := drainEnd
		if inRun {
			f.expire(now)
			if err := a.fill(f, msg, payload, now); err != nil {
				return err
			}
			deadline = duration
			if exp, ok := f.expiry(); ok {
				deadline = min(deadline, exp)
			}
		} else if f.outstanding() == 0 || now >= drainEnd || ctx.Err() != nil {
			return nil
		}
		a.sock.SetReadDeadline(start.Add(deadline))
		n, from, err := a.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				continue
			case a.ended.Load():
				return &stepError{"io", errAssociationEnded}
			case errors.Is(err, net.ErrClosed):
				return nil
			}
			continue // an ICMP error queued on the socket; the datagram counts as lost
		}
		if !a.unwrap(f, buf[:n], from, want, time.Since(start), inRun) {
			continue
		}
	}
}

// fill sends datagrams until the window is full.
func (a *udpAssociation) fill(f *udpFlight, msg, payload []byte, now time.Duration) error {
	for f.canSend() {
		f.stamp(payload, now)
		if _, err := a.sock.WriteToUDPAddrPort(msg, a.to); err != nil {
			if a.ended.Load() {
				return &stepError{"io", errAssociationEnded}
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return nil // ENOBUFS and the like: try again after the next reply or timeout
		}
		f.sent()
	}
	return nil
}

// unwrap checks one datagram from the relay (or the echo) and records it.
func (a *udpAssociation) unwrap(f *udpFlight, b []byte, from netip.AddrPort, want []byte, now time.Duration, inRun bool) bool {
	if from != a.to {
		f.bad++
		return false
	}
	if a.header != nil {
		r, err := parseUDPReply(b)
		if err != nil {
			f.bad++
			return false
		}
		b = r.payload
	}
	return f.echoed(b, want, now, inRun)
}

func countLive(assocs []*udpAssociation) int {
	n := 0
	for _, a := range assocs {
		if a != nil {
			n++
		}
	}
	return n
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// dialParallel is how many sessions are opened at once: enough to open
// thousands of idle sessions in seconds, few enough not to trip a proxy's
// handshake or accept-queue limits, which would measure those instead.
const dialParallel = 32

// maxLoggedErrors bounds the error lines one run logs; the rest are only counted.
const maxLoggedErrors = 5

// errorCount counts failures by session step. The zero value is not usable; use
// [newErrorCount]. Safe for concurrent use.
type errorCount struct {
	log    *slog.Logger
	mu     sync.Mutex
	total  int
	byStep map[string]int
}

func newErrorCount(log *slog.Logger) *errorCount {
	return &errorCount{log: log, byStep: map[string]int{}}
}

// add counts err under its step and logs the first few.
func (e *errorCount) add(err error) {
	e.mu.Lock()
	e.total++
	e.byStep[errStep(err)]++
	n := e.total
	e.mu.Unlock()
	if n <= maxLoggedErrors {
		e.log.Warn("session error", "err", err)
	}
}

// counts returns the total and a copy of the counts by step.
func (e *errorCount) counts() (int, map[string]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total, maps.Clone(e.byStep)
}

// opener opens many sessions to one target with bounded parallelism.
type opener struct {
	d       dialer
	target  netip.AddrPort
	errs    *errorCount
	prepare func(i int, c net.Conn) error // runs on each new session; may be nil
}

// giveUpAfter returns how many failed sessions make [opener.open] stop opening
// more: 1% of them, at least 20. A proxy out of descriptors can stall every
// further handshake until its timeout; without this cap thousands of sessions
// would each wait that long.
func giveUpAfter(n int) int {
	return max(20, n/100)
}

// open dials one session per credential and returns them by index; a failed
// session is nil and counted in errs. It stops early when ctx ends or after
// [giveUpAfter] failures.
func (op opener) open(ctx context.Context, creds []credential) []net.Conn {
	conns := make([]net.Conn, len(creds))
	idx := make(chan int)
	var wg sync.WaitGroup
	for range min(dialParallel, len(creds)) {
		wg.Go(func() {
			for i := range idx {
				conns[i] = op.openOne(ctx, i, creds[i])
			}
		})
	}
	limit := giveUpAfter(len(creds))
	for i := range creds {
		if n, _ := op.errs.counts(); n >= limit || ctx.Err() != nil {
			op.errs.log.Warn("stopped opening sessions", "opened", i, "errors", n)
			break
		}
		idx <- i
	}
	close(idx)
	wg.Wait()
	return conns
}

func (op opener) openOne(ctx context.Context, i int, c credential) net.Conn {
	conn, err := op.d.dial(ctx, c, op.target)
	if err != nil {
		op.errs.add(err)
		return nil
	}
	if op.prepare == nil {
		return conn
	}
	conn.SetDeadline(time.Now().Add(op.d.timeout))
	if err := op.prepare(i, conn); err != nil {
		conn.Close()
		op.errs.add(&stepError{"io", err})
		return nil
	}
	conn.SetDeadline(time.Time{})
	return conn
}

// closeAll closes every non-nil connection.
func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// live returns how many connections are not nil.
func live(conns []net.Conn) int {
	n := 0
	for _, c := range conns {
		if c != nil {
			n++
		}
	}
	return n
}

// roundTrip writes one echoSize message and reads the echo back.
func roundTrip(c net.Conn, msg, buf []byte) error {
	if _, err := c.Write(msg); err != nil {
		return err
	}
	_, err := io.ReadFull(c, buf[:len(msg)])
	return err
}

// endedByDeadline reports whether err only means the measured phase is over: the
// deadline passed or the connection was closed on purpose.
func endedByDeadline(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed)
}

// proxyCPU reads the CPU seconds of the proxy process tree; ok is false without
// a pid. An unreadable process is an error.
func proxyCPU(pid int) (secs float64, ok bool, err error) {
	if pid <= 0 {
		return 0, false, nil
	}
	secs, err = treeCPUSeconds(pid)
	if err != nil {
		return 0, false, fmt.Errorf("-pid: %w", err)
	}
	return secs, true, nil
}

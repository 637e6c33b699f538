package h2proxy

import (
	"io"
	"os"
	"sync"
	"time"
)

// Sizes of what a stream reads from its client ahead of the relay.
const (
	// pumpSmall is the pump's first read size: most tunnels are quiet or
	// interactive, and an idle stream holds this much while it waits.
	pumpSmall = 4 << 10
	// pumpLarge is its read size once a read filled pumpSmall: a stream.
	pumpLarge = 32 << 10
	// maxPending bounds what waits for the relay; past it the pump stops
	// reading and HTTP/2 flow control holds the client back.
	maxPending = 64 << 10
)

// inbox reads a stream's request body on a goroutine of its own (the pump) and
// hands it to Read, which honours a read deadline of its own: net/http's
// per-stream read deadline ends the body for good when it passes, where the
// relay needs deadlines that wake a read and leave the stream usable (its
// periodic byte reports, the TLS server name wait). Its methods are safe for
// concurrent use.
type inbox struct {
	body io.ReadCloser

	mu       sync.Mutex
	cond     sync.Cond
	started  bool
	pending  []byte
	err      error // the body's end or failure, after pending
	closed   bool
	deadline time.Time
	timer    *time.Timer
}

func newInbox(body io.ReadCloser) *inbox {
	in := &inbox{body: body}
	in.cond.L = &in.mu
	return in
}

// Read returns what the client sent, waiting for it until the read deadline.
func (in *inbox) Read(p []byte) (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.waitLocked(); err != nil {
		return 0, err
	}
	if len(in.pending) == 0 {
		if in.closed {
			return 0, os.ErrClosed
		}
		return 0, in.err
	}
	n := copy(p, in.pending)
	in.pending = in.pending[n:]
	if len(in.pending) == 0 {
		in.pending = nil
	}
	in.cond.Broadcast() // room for the pump
	return n, nil
}

// WaitRead waits, as Read does, until a Read would not block, and returns how
// many bytes one would return now, without taking any: the relay then takes a
// copy buffer only for bytes that are there (see [tunnel.ReadWaiter]). 0 with
// a nil error is the end of the body.
func (in *inbox) WaitRead() (int, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.waitLocked(); err != nil {
		return 0, err
	}
	switch {
	case len(in.pending) > 0:
		return len(in.pending), nil
	case in.closed:
		return 0, os.ErrClosed
	case in.err == io.EOF:
		return 0, nil
	}
	return 0, in.err
}

// waitLocked starts the pump at the first use and waits until bytes are
// pending, the body ended or the inbox is closed; it returns
// os.ErrDeadlineExceeded when the read deadline passes first. in.mu is held.
func (in *inbox) waitLocked() error {
	if !in.started {
		in.started = true
		go in.pump()
	}
	for len(in.pending) == 0 && in.err == nil && !in.closed {
		if !in.deadline.IsZero() && !time.Now().Before(in.deadline) {
			return os.ErrDeadlineExceeded
		}
		in.cond.Wait()
	}
	return nil
}

// pump reads the body until it ends or the inbox is closed.
func (in *inbox) pump() {
	buf := make([]byte, pumpSmall)
	for {
		n, err := in.body.Read(buf)
		in.mu.Lock()
		for len(in.pending) >= maxPending && !in.closed {
			in.cond.Wait()
		}
		if in.closed {
			in.mu.Unlock()
			return
		}
		in.pending = append(in.pending, buf[:n]...)
		if err != nil {
			in.err = err
		}
		in.cond.Broadcast()
		in.mu.Unlock()
		if err != nil {
			return
		}
		if n == len(buf) && len(buf) < pumpLarge {
			buf = make([]byte, pumpLarge)
		}
	}
}

// SetReadDeadline sets when a Read that waits gives up with a timeout; the
// stream stays usable.
func (in *inbox) SetReadDeadline(t time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.deadline = t
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	if !t.IsZero() {
		in.timer = time.AfterFunc(time.Until(t), func() {
			in.mu.Lock()
			in.cond.Broadcast()
			in.mu.Unlock()
		})
	}
	in.cond.Broadcast()
}

// Close ends reading: a Read that waits returns, and the pump stops once the
// body's Read returns.
func (in *inbox) Close() {
	in.mu.Lock()
	in.closed = true
	if in.timer != nil {
		in.timer.Stop()
	}
	in.cond.Broadcast()
	in.mu.Unlock()
	in.body.Close()
}

package h2proxy

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// stream is one HTTP/2 stream as the core sees a client's side: what the
// client sends on it (its request body) is read through an inbox, and what the
// proxy writes goes out at once as DATA frames. Closing it ends the stream: its handler may
// return once no read or write is under way, since net/http's ResponseWriter
// must not be used after the handler has returned. Reset ends it with
// RST_STREAM instead, so that the client sees an error and not a complete
// response (a cut tunnel). Its methods are safe for concurrent use.
type stream struct {
	in            *inbox
	w             http.ResponseWriter
	rc            *http.ResponseController
	local, remote net.Addr

	mu            sync.Mutex
	cond          sync.Cond // signalled when ops drops to 0 after the close
	ops           int       // writes and deadline changes under way
	writing       int       // writes under way
	writeDeadline time.Time // as last given to net/http
	closed        bool
	reset         bool
	done          chan struct{} // closed by Close
}

func newStream(w http.ResponseWriter, r *http.Request, conn net.Conn) *stream {
	st := &stream{in: newInbox(r.Body), w: w, rc: http.NewResponseController(w), local: conn.LocalAddr(),
		remote: conn.RemoteAddr(), done: make(chan struct{})}
	st.cond.L = &st.mu
	return st
}

// enter counts an operation in, unless the stream is closed.
func (st *stream) enter() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return false
	}
	st.ops++
	return true
}

func (st *stream) leave() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ops--; st.ops == 0 && st.closed {
		st.cond.Broadcast()
	}
}

func (st *stream) Read(p []byte) (int, error) { return st.in.Read(p) }

// WaitRead waits until the client has sent bytes (see [tunnel.ReadWaiter]).
func (st *stream) WaitRead() (int, error) { return st.in.WaitRead() }

func (st *stream) Write(p []byte) (int, error) {
	if !st.enter() {
		return 0, net.ErrClosed
	}
	defer st.leave()
	st.mu.Lock()
	st.writing++
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		st.writing--
		st.mu.Unlock()
	}()
	n := 0
	for n < len(p) {
		chunk := p[n:min(len(p), n+maxDataPerRecord)]
		m, err := st.w.Write(chunk)
		n += m
		if err == nil {
			err = st.rc.Flush()
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// maxDataPerRecord is the most a stream hands net/http in one write: a DATA
// frame of it and its 9-byte header fill one TLS record of the most plain text
// a record may carry (16 KiB). A 16 KiB write became a frame of 16,393 bytes,
// which TLS sent as a full record and a 9-byte one: two records, two system
// calls and two TCP segments for every frame.
const maxDataPerRecord = 16<<10 - 9

// Close ends the stream: a read under way returns (the body is closed), and so
// does a write blocked on the client's flow control (its deadline passes, which
// resets the stream: the transfer was cut short); the handler's wait ends once
// they have. A stream closed with nothing under way ends cleanly when its
// handler returns.
func (st *stream) Close() error {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return nil
	}
	st.closed = true
	st.ops++ // this close's own use of the writer, which the handler waits for
	blocked := st.writing > 0
	close(st.done)
	st.mu.Unlock()
	defer st.leave()
	st.in.Close()
	if blocked {
		st.rc.SetWriteDeadline(time.Now())
	}
	return nil
}

// Reset makes the stream end with RST_STREAM, and closes it.
func (st *stream) Reset() {
	st.mu.Lock()
	st.reset = true
	st.mu.Unlock()
	st.Close()
}

// wait blocks until the stream is closed and no read or write is under way,
// and reports whether it was reset.
func (st *stream) wait() (reset bool) {
	<-st.done
	st.mu.Lock()
	defer st.mu.Unlock()
	for st.ops > 0 {
		st.cond.Wait()
	}
	return st.reset
}

func (st *stream) LocalAddr() net.Addr  { return st.local }
func (st *stream) RemoteAddr() net.Addr { return st.remote }

func (st *stream) SetDeadline(t time.Time) error {
	st.SetReadDeadline(t)
	return st.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline of reads, which the inbox keeps: net/http's
// own would end the body for good when it passes.
func (st *stream) SetReadDeadline(t time.Time) error {
	st.in.SetReadDeadline(t)
	return nil
}

// SetWriteDeadline sets when a write blocked on the client's flow control
// resets the stream (net/http's per-stream write deadline). Each change is a
// message to the connection's serving goroutine, which every stream's frames
// also wait for, so a deadline moved later by less than an eighth of its
// distance (at most deadlineSlack) keeps the one set: the relay moves its
// deadlines every second, and a write may then be cut that much early after
// no progress for nearly its whole allowance.
func (st *stream) SetWriteDeadline(t time.Time) error {
	if !st.enter() {
		return net.ErrClosed
	}
	defer st.leave()
	st.mu.Lock()
	last := st.writeDeadline
	skip := !t.IsZero() && !last.IsZero() && t.After(last) && t.Sub(last) < min(time.Until(t)/8, deadlineSlack)
	if !skip {
		st.writeDeadline = t
	}
	st.mu.Unlock()
	if skip {
		return nil
	}
	return st.rc.SetWriteDeadline(t)
}

// deadlineSlack bounds how much earlier than asked a stream's write deadline
// may fall (see stream.SetWriteDeadline).
const deadlineSlack = 5 * time.Second

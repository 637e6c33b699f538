package proxy

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/shaping"
)

// spliceChunk is the most an unshaped direction moves in one step before it
// refreshes its read deadline and may report bytes: large enough that the
// kernel's splice path dominates, small enough that counters move during long
// transfers. The splicer moves at most a pipe's capacity (1 MiB) per step, so
// the bound binds only io.Copy where there is no splicer.
const spliceChunk = 4 << 20

// reportEvery batches byte counts before they reach the recorder, so metrics cost
// nothing per chunk or step.
const reportEvery = 256 << 10

// reportInterval bounds how stale the byte counters of a live session may be: a
// long, slow session (a call) shows in graphs while it runs, not when it ends.
// Each direction wakes this often while its peer is silent, which costs one timer.
const reportInterval = 5 * time.Second

var errIdle = errors.New("idle timeout")

// halfPipe is one direction of a relayed TCP session.
type halfPipe struct {
	sess      *session
	dst, src  net.Conn
	ready     *readiness // nil: the copy itself waits for data
	splice    *splicer   // nil: not between two TCP sockets, or not on Linux
	next      io.LimitedReader
	direction string
	bytes     *atomic.Int64
	throttled *atomic.Int64
	chain     *shaping.Chain // nil: unshaped, zero-copy
	pacer     *shaping.Pacer // shaped and spliced: tokens first, then splice
	unflushed int64
	flushed   time.Time // when unflushed was last reported
	streaming bool      // the last step moved at least streamingStep bytes
	err       error     // why run ended; nil at EOF
	// peerRunning counts the session's running directions, this one included.
	peerRunning *atomic.Int32
}

// streamingStep is the step size above which a direction counts as streaming. A
// streaming direction skips the readiness wait and copies up to spliceChunk per
// step, as a plain copy would, so bulk transfers pay no extra system calls; it
// holds its pipe or buffer only until the stream pauses for one read deadline.
const streamingStep = 64 << 10

// tcpRelay runs both directions of a session, each on a goroutine of its own, and
// ends the session when the second one finishes. The goroutine that did the
// handshake exits instead of relaying: its stack grew in the handshake and would
// stay that size for the whole session, while fresh relay goroutines start small.
type tcpRelay struct {
	sess     *session
	lease    sessionLease
	up, down *halfPipe
	running  atomic.Int32
}

// relayTCP starts relaying and takes over the end of the session: the session's
// goroutine returns at once, and two goroutines move the bytes.
func (sess *session) relayTCP(target net.Conn, pending []byte) {
	r := &tcpRelay{sess: sess, lease: sess.acquire()}
	sess.open()
	sess.touch()
	r.up = sess.newHalfPipe(target, sess.conn, directionUpload, &sess.up, &sess.throttledUp)
	r.down = sess.newHalfPipe(sess.conn, target, directionDownload, &sess.down, &sess.throttledDown)
	if r.lease.shaped() {
		r.up.shape(r.lease.Upload())
		r.down.shape(r.lease.Download())
	}
	r.up.peerRunning, r.down.peerRunning = &r.running, &r.running
	sess.detached = true
	r.running.Store(2)
	go r.run(r.up, pending)
	go r.run(r.down, nil)
}

func (sess *session) newHalfPipe(dst, src net.Conn, direction string, bytes, throttled *atomic.Int64) *halfPipe {
	h := &halfPipe{sess: sess, dst: dst, src: src, ready: newReadiness(src), splice: newSplicer(dst, src),
		direction: direction, bytes: bytes, throttled: throttled}
	h.next.R = src
	return h
}

// shape puts the direction through chain. Between two TCP sockets with a
// readiness check it stays zero-copy: it takes the tokens for what is queued and
// then splices exactly that, so shaping costs no buffer and no copy.
func (h *halfPipe) shape(chain *shaping.Chain) {
	h.chain = chain
	if h.ready != nil && h.splice != nil {
		h.pacer = shaping.NewPacer(chain)
	}
}

func (r *tcpRelay) run(h *halfPipe, pending []byte) {
	defer r.done()
	if h.pacer != nil {
		defer h.pacer.Stop()
	}
	defer r.sess.srv.recoverSession(r.sess)
	h.err = h.writePending(pending)
	if h.err == nil {
		h.err = h.run()
	}
	if h.err != nil {
		r.sess.abort() // wakes the other direction
	}
}

// done ends the session when the second direction finishes.
func (r *tcpRelay) done() {
	if r.running.Add(-1) > 0 {
		return
	}
	r.lease.release()
	r.sess.reason = r.sess.closeReason(r.down.err, r.up.err)
	r.sess.end()
}

// closeReason names why a relay ended, for the accounting line, from the errors
// that ended its two halves.
func (sess *session) closeReason(first, second error) string {
	switch {
	case sess.stopping.Load():
		return "shutdown"
	case errors.Is(first, errIdle) || errors.Is(second, errIdle):
		return "idle"
	}
	for _, err := range []error{first, second} {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			sess.log.Debug("relay error", "err", err)
			return "error"
		}
	}
	return "eof"
}

func (h *halfPipe) writePending(pending []byte) error {
	if len(pending) == 0 {
		return nil
	}
	n, err := h.dst.Write(pending)
	h.count(int64(n))
	return err
}

// run relays until EOF (then half-closes dst), idle timeout or error.
func (h *halfPipe) run() error {
	idle := h.sess.pol.cfg.Timeouts.Idle
	for {
		// Only reads get a deadline: a read that times out loses nothing, while a
		// write that times out midway would drop bytes already taken from src.
		h.src.SetReadDeadline(time.Now().Add(min(idle, reportInterval)))
		n, err := h.step()
		if err != nil || h.unflushed >= reportEvery || time.Since(h.flushed) >= reportInterval {
			h.flush()
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			// When the other direction is done too, the close that follows at once
			// sends the FIN; a shutdown first would be a system call for nothing.
			if h.peerRunning.Load() > 1 {
				closeWrite(h.dst)
			}
			return nil
		case isTimeout(err) && (n > 0 || !h.sess.idleFor(idle)):
		case isTimeout(err):
			return errIdle
		default:
			return err
		}
	}
}

// step waits until src has bytes, holding nothing, then moves what is there: when
// unshaped, a small message with one read and one write and a stream with
// splice; when shaped, in bucket-sized chunks, spliced. Where splice or the
// readiness check is missing (not two TCP sockets, not Linux), io.Copy or
// shaping.Copy move the bytes.
func (h *halfPipe) step() (int64, error) {
	switch {
	case h.pacer != nil:
		return h.spliceShaped()
	case h.chain != nil:
	case h.streaming && h.splice != nil:
		return h.spliceStream()
	case !h.streaming && h.ready != nil:
		return h.copySmall()
	}
	avail := spliceChunk
	if h.ready != nil && !h.streaming {
		var err error
		if avail, err = h.ready.wait(); err != nil {
			return 0, err
		}
		if avail == 0 {
			return 0, io.EOF
		}
	}
	h.next.N = int64(min(avail, spliceChunk))
	var n int64
	var err error
	if h.chain != nil {
		n, err = shaping.Copy(h.sess.ctx, h.dst, &h.next, h.chain, h.observe)
	} else {
		n, err = io.Copy(h.dst, &h.next)
		h.count(n)
	}
	if n == 0 && err == nil {
		err = io.EOF // without a readiness check, the limited read found EOF
	}
	h.streaming = n >= streamingStep
	return n, err
}

// copySmall waits until src has bytes, reads once what is there (up to
// smallReadSize) and writes it to dst. A read that fills the buffer means a stream:
// the steps that follow splice. Small messages, which most interactive sessions
// consist of, thus cost one read and one write, where splice would take two calls
// through a pipe plus a probe of the queued size.
func (h *halfPipe) copySmall() (int64, error) {
	buf, err := h.ready.read()
	if err != nil {
		return 0, err
	}
	if len(buf) == 0 {
		return 0, io.EOF
	}
	var n int
	if h.splice != nil {
		n, err = h.splice.write(buf)
	} else {
		n, err = h.dst.Write(buf)
	}
	h.ready.release()
	h.count(int64(n))
	h.streaming = len(buf) == smallReadSize
	return int64(n), err
}

// spliceStream splices what src has queued, up to a pipe's capacity, waiting
// for it if there is nothing yet. A step that finds less than a small read's worth
// ends the stream: the next one waits holding nothing and copies.
func (h *halfPipe) spliceStream() (int64, error) {
	n, err := h.splice.move(spliceChunk)
	h.count(n)
	h.streaming = n >= smallReadSize
	return n, err
}

// spliceShaped waits until src has bytes, takes the tokens for up to one chunk of
// them, and splices exactly that much. The bytes wait in the socket, not in a
// buffer, so the sender is held back by TCP flow control as with a copy.
func (h *halfPipe) spliceShaped() (int64, error) {
	avail, err := h.ready.wait()
	if err != nil {
		return 0, err
	}
	if avail == 0 {
		return 0, io.EOF
	}
	n := min(avail, h.chain.ChunkSize())
	waited, err := h.pacer.Wait(h.sess.ctx, n)
	if err != nil {
		return 0, err
	}
	moved, err := h.splice.moveAll(n)
	h.observe(int(moved), waited)
	return moved, err
}

// count records bytes of the unshaped path, which learns them per chunk.
func (h *halfPipe) count(n int64) {
	if n > 0 {
		h.bytes.Add(n)
		h.unflushed += n
		h.sess.touch()
	}
}

// observe is the shaped copy's per-chunk callback; it must not allocate.
func (h *halfPipe) observe(n int, waited time.Duration) {
	h.count(int64(n))
	if waited > 0 {
		h.throttled.Add(int64(waited))
		h.sess.srv.rec.Throttled(h.sess.app, h.direction, waited)
	}
	if h.unflushed >= reportEvery {
		h.flush()
	}
}

func (h *halfPipe) flush() {
	h.flushed = time.Now()
	if h.unflushed > 0 {
		h.sess.srv.rec.Transferred(h.sess.user, h.sess.app, h.direction, "tcp", h.unflushed)
		h.unflushed = 0
	}
}

// closeWrite passes a half-close on, so a destination that sends and then closes
// delivers every byte and the client sees EOF.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// sessionLease wraps the shaper's lease so that a server without a shaper relays
// unshaped.
type sessionLease struct{ *shaping.Lease }

func (sess *session) acquire() sessionLease {
	if sess.srv.shaper == nil {
		return sessionLease{}
	}
	return sessionLease{sess.srv.shaper.Acquire(sess.user, sess.app)}
}

func (l sessionLease) shaped() bool { return l.Lease != nil && !l.Lease.Unshaped() }

func (l sessionLease) release() {
	if l.Lease != nil {
		l.Lease.Release()
	}
}

package proxy

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/shaping"
)

// spliceChunk is how much an unshaped direction moves per io.CopyN before it
// refreshes its deadlines and reports bytes: large enough that the kernel's splice
// path dominates, small enough that counters move during long transfers.
const spliceChunk = 4 << 20

// reportEvery batches byte counts of the shaped path before they reach the
// recorder, so metrics cost nothing per chunk.
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
	direction string
	bytes     *atomic.Int64
	throttled *atomic.Int64
	chain     *shaping.Chain // nil: unshaped, zero-copy
	unflushed int64
}

// relayTCP moves bytes both ways until both sides are done, one direction on a new
// goroutine and one on the session's own, so a session costs two goroutines.
func (sess *session) relayTCP(target net.Conn, pending []byte) {
	lease := sess.acquire()
	defer lease.release()
	sess.open()
	sess.touch()
	up := &halfPipe{sess: sess, dst: target, src: sess.conn, direction: directionUpload, bytes: &sess.up, throttled: &sess.throttledUp}
	down := &halfPipe{sess: sess, dst: sess.conn, src: target, direction: directionDownload, bytes: &sess.down, throttled: &sess.throttledDown}
	if lease.shaped() {
		up.chain, down.chain = lease.Upload(), lease.Download()
	}
	upErr := make(chan error, 1)
	go func() {
		err := up.writePending(pending)
		if err == nil {
			err = up.run()
		}
		if err != nil {
			sess.abort()
		}
		upErr <- err
	}()
	downErr := down.run()
	if downErr != nil {
		sess.abort()
	}
	sess.reason = sess.closeReason(downErr, <-upErr)
}

// closeReason names why a relay ended, for the accounting line.
func (sess *session) closeReason(errs ...error) string {
	switch {
	case sess.stopping.Load():
		return "shutdown"
	case errors.Is(errs[0], errIdle) || errors.Is(errs[1], errIdle):
		return "idle"
	}
	for _, err := range errs {
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
		var n int64
		var err error
		if h.chain == nil {
			n, err = io.CopyN(h.dst, h.src, spliceChunk)
			h.count(n)
		} else {
			n, err = shaping.Copy(h.sess.ctx, h.dst, h.src, h.chain, h.observe)
			if err == nil {
				err = io.EOF
			}
		}
		h.flush()
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			closeWrite(h.dst)
			return nil
		case isTimeout(err) && (n > 0 || !h.sess.idleFor(idle)):
		case isTimeout(err):
			return errIdle
		default:
			return err
		}
	}
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

package tunnel

import (
	"io"
	"net"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
	"github.com/sockshaper/sockshaper/usage"
)

// step waits until src has bytes, holding nothing, then moves what is there.
// Unshaped: a small message with one read and one write, a stream with splice.
// Shaped (some bucket on the chain has a rate now): in bucket-sized chunks,
// spliced. Where splice or the readiness check is missing (not two TCP sockets,
// not Linux), io.Copy or shaping.Copy move the bytes. The choice is made again
// at every step, so a reload that sets or lifts a limit applies to the session
// from its next step. Under a quota, each step moves what it took from the
// direction's grant (relay_quota.go): a user with an allowance streams through
// spliceGranted, which takes its bytes once they are there.
func (h *halfPipe) step() (int64, error) {
	limit, err := h.grant()
	if err != nil || limit == 0 {
		if err == nil {
			err = h.awaitFree()
		}
		return 0, err
	}
	shaped := h.chain != nil && h.chain.Limited()
	limited := limit != usage.NoLimit
	switch {
	case shaped && h.pacer != nil:
		return h.spliceShaped()
	case shaped:
	case limited && (h.streaming || limit < smallReadSize) && h.ready != nil && h.splice != nil:
		return h.spliceGranted()
	case h.streaming && h.splice != nil:
		return h.spliceStream()
	case !h.streaming && h.ready != nil && limit >= smallReadSize:
		return h.copySmall()
	}
	return h.copy(shaped)
}

// copy moves up to spliceChunk bytes through a buffer, shaped or not: the path
// of a direction that is not between two TCP sockets on Linux.
func (h *halfPipe) copy(shaped bool) (int64, error) {
	avail := spliceChunk
	waits := (h.ready != nil || h.waiter != nil) && !h.streaming
	if waits {
		var err error
		if h.ready != nil {
			avail, err = h.ready.wait()
		} else {
			avail, err = h.waiter.WaitRead()
		}
		if err != nil {
			return 0, err
		}
		if avail == 0 {
			return 0, io.EOF
		}
	}
	// A copy that waits for bytes itself (no readiness check, or streaming)
	// takes none from the grant while it waits: it counts what it moved after.
	if !waits {
		h.next.N = min(int64(avail), h.quota.Left())
	} else {
		h.next.N = h.quota.Take(int64(avail))
	}
	if h.next.N == 0 {
		return 0, nil // the user's other directions took what is left (not EOF)
	}
	var n int64
	var err error
	if shaped {
		n, err = shaping.Copy(h.sess.conn.ctx, &h.out, &h.next, h.chain, h.observe)
	} else {
		bp := copyBufPool.Get().(*[]byte)
		n, err = io.CopyBuffer(&h.out, &h.next, *bp)
		copyBufPool.Put(bp)
		h.count(n)
	}
	if waits {
		h.quota.Settle(n)
	} else {
		h.quota.Use(n)
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
	// The read took the bytes already: they count under the grant even if it
	// shrank during the wait (at most smallReadSize past it).
	h.quota.Take(int64(len(buf)))
	var n int
	if h.splice != nil {
		n, err = h.splice.write(buf)
	} else {
		n, err = h.out.Write(buf)
	}
	h.ready.release()
	h.quota.Settle(int64(n))
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
//
// Waiting for tokens is not idleness: while it lasts the session does not time
// out, and a deadline that passed during the wait cannot fail the splice of the
// bytes paid for (which would lose the tokens and, on a crowded bucket, stall
// the session for good).
func (h *halfPipe) spliceShaped() (int64, error) {
	avail, err := h.ready.wait()
	if err != nil {
		return 0, err
	}
	if avail == 0 {
		return 0, io.EOF
	}
	n := min(avail, h.chain.ChunkSize())
	waited, err := h.takeTokens(avail, n)
	if err != nil {
		return 0, err
	}
	if n = int(h.quota.Take(int64(n))); n == 0 {
		return 0, nil // the user's other directions took what is left
	}
	moved, err := h.splice.moveAll(n)
	h.quota.Settle(moved)
	h.observe(int(moved), waited)
	return moved, err
}

// takeTokens takes n bytes' worth of tokens for a shaped step that found avail
// bytes queued. A sparse message (all there is fits shaping.SparseMessage) takes
// them at once, ahead of the bulk sessions queued on the buckets, when the
// buckets can give them that way; anything else waits its turn. The deadlines
// are set afresh after a wait, so that the splice of bytes already paid for
// cannot fail on a deadline that passed during the wait.
func (h *halfPipe) takeTokens(avail, n int) (time.Duration, error) {
	if avail <= shaping.SparseMessage && h.chain.Allow(n) {
		return 0, nil
	}
	h.sess.tokenWaits.Add(1)
	waited, err := h.pacer.Wait(h.sess.conn.ctx, n)
	h.sess.tokenWaits.Add(-1)
	if err == nil && waited > 0 {
		h.setDeadlines(time.Now())
	}
	return waited, err
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
		h.sess.core.rec.Throttled(h.sess.app, h.direction, waited)
		h.sess.quota.Throttled(waited)
	}
	if h.unflushed >= reportEvery {
		h.flush()
	}
}

// flush reports the bytes moved since the last report, then renews the quota
// grant, under which they no longer count as unreported.
func (h *halfPipe) flush() {
	h.flushed = time.Now()
	if h.unflushed > 0 {
		h.sess.core.rec.Transferred(h.sess.user, h.sess.app, h.direction, metrics.TransportTCP, h.unflushed)
		h.unflushed = 0
	}
	h.quota.Renew()
}

// stallWriter writes to a connection whole, past its write deadline while the
// peer keeps taking bytes (see stallDeadline): the writer of the copies that do
// not go through the splicer.
type stallWriter struct {
	conn  net.Conn
	stall stallDeadline
}

func (w *stallWriter) Write(b []byte) (int, error) {
	w.stall.begin()
	defer w.stall.end()
	written := 0
	for {
		n, err := w.conn.Write(b[written:])
		written += n
		if !w.stall.retry(err, n > 0) {
			return written, w.stall.named(err)
		}
	}
}

package tunnel

import (
	"errors"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
	"github.com/sockshaper/sockshaper/usage"
)

// spliceChunk is the most an unshaped direction moves in one step without a
// splicer (io.Copy, where the relay is not between two TCP sockets on Linux):
// large enough that the copy dominates, small enough that counters move and the
// relay sees a reload that shapes the session. The splicer moves at most a
// pipe's capacity (1 MiB) per step.
const spliceChunk = 4 << 20

// reportEvery batches byte counts before they reach the recorder, so metrics cost
// nothing per chunk or step.
const reportEvery = 256 << 10

// reportInterval bounds how stale the byte counters of a live session may be: a
// long, slow session (a call) shows in graphs while it runs, not when it ends.
// Each direction wakes this often while its peer is silent, which costs one timer.
const reportInterval = 5 * time.Second

// maxDeadlineSlack is the longest a direction goes on with deadlines it set
// before it sets them again: moving a deadline is a timer operation, and a
// chatty session takes thousands of steps a second. The slack is a quarter of
// the read deadline's distance, at most this, so deadlines stay at least three
// quarters of their distance away.
const maxDeadlineSlack = time.Second

var (
	errIdle  = errors.New("idle timeout")
	errQuota = errors.New("quota used up")
)

// halfPipe is one direction of a relayed TCP session.
type halfPipe struct {
	sess      *Session
	dst, src  net.Conn
	ready     *readiness // nil: the copy itself waits for data
	waiter    ReadWaiter // src's own wait for data, where ready is nil; nil: none
	splice    *splicer   // nil: not between two TCP sockets, or not on Linux
	next      io.LimitedReader
	out       stallWriter // dst for the copies that are not the splicer's
	direction string
	// quota is the direction's grant of its user's allowance (relay_quota.go).
	quota     usage.Grant
	bytes     *atomic.Int64
	throttled *atomic.Int64
	// chain is the direction's buckets (nil without a shaper). The direction
	// takes the shaped path while any of them has a rate, which a reload may
	// change at any time, and the zero-copy path otherwise.
	chain      *shaping.Chain
	pacer      *shaping.Pacer // tokens first, then splice; nil without readiness and splicer
	unflushed  int64
	flushed    time.Time // when unflushed was last reported
	deadlineAt time.Time // when the deadlines were last set
	slack      time.Duration
	streaming  bool  // the last step moved at least streamingStep bytes
	err        error // why run ended; nil at EOF
	// peerRunning counts the session's running directions, this one included.
	peerRunning *atomic.Int32
	// reportAtEnd: the session's end reports this direction's last bytes and
	// releases its grant (tcpRelay.end).
	reportAtEnd bool
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
	sess     *Session
	lease    sessionLease
	up, down *halfPipe
	running  atomic.Int32
}

// Relay opens the session and relays between the client and target, starting
// with pending (bytes the client sent after its request), through the session's
// buckets, until both directions end; then it ends the session and its
// connection. It takes over the end of the connection (see [Conn.Detach]): the
// caller's goroutine returns at once, and two goroutines move the bytes.
func (s *Session) Relay(target net.Conn, pending []byte) {
	r := &tcpRelay{sess: s, lease: s.acquire()}
	s.Open()
	s.touch()
	client := s.conn.nc
	r.up = s.newHalfPipe(target, client, metrics.DirectionUpload, &s.up, &s.throttledUp)
	r.down = s.newHalfPipe(client, target, metrics.DirectionDownload, &s.down, &s.throttledDown)
	if r.lease.Lease != nil {
		r.up.shape(r.lease.Upload())
		r.down.shape(r.lease.Download())
	}
	r.up.peerRunning, r.down.peerRunning = &r.running, &r.running
	s.conn.Detach()
	// The first deadlines are set here, on the handshake goroutine, whose stack
	// has grown already (see halfPipe.aside for why the relay's must not).
	now := time.Now()
	r.up.setDeadlines(now)
	r.down.setDeadlines(now)
	r.running.Store(2)
	go r.run(r.up, pending)
	go r.run(r.down, nil)
}

func (s *Session) newHalfPipe(dst, src net.Conn, direction string, bytes, throttled *atomic.Int64) *halfPipe {
	idle := s.conn.pol.Config.Timeouts.Idle
	h := &halfPipe{sess: s, dst: dst, src: src, ready: newReadiness(src), splice: newSplicer(dst, src),
		direction: direction, bytes: bytes, throttled: throttled}
	if h.ready == nil {
		h.waiter, _ = src.(ReadWaiter)
	}
	h.next.R = src
	probe := newQueueProbe(dst)
	h.out = stallWriter{conn: dst, stall: stallDeadline{conn: dst, after: idle, writing: &s.writing, probe: probe}}
	if !retryableWrites(dst) {
		h.out.stall.after = 0 // a timed-out write is final: see retryableWrites
	}
	h.slack = min(min(idle, reportInterval)/4, maxDeadlineSlack)
	h.flushed = time.Now() // the first report is due in reportInterval, not at the first step
	h.quota = s.quota.Grant()
	if h.splice != nil {
		h.splice.stall.after = idle
		h.splice.stall.writing = &s.writing
		h.splice.stall.probe = probe
		h.splice.onPipeFailure = s.core.pipeFailed
		if s.core.pipes != nil {
			h.splice.newPipe = s.core.pipes
		}
	}
	return h
}

// shape puts the direction through chain. Between two TCP sockets with a
// readiness check it stays zero-copy while shaped: it takes the tokens for what
// is queued and then splices exactly that, so shaping costs no buffer and no
// copy.
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
	defer r.sess.core.Recover(r.sess.conn)
	defer func() {
		// After a panic too: a normal end reported its bytes. The direction
		// that ends its session leaves both to the session's end, which
		// reports the bytes first: released before, they would count nowhere
		// for a moment, and the user's other sessions could take them.
		if !h.reportAtEnd {
			h.quota.Release()
		}
	}()
	h.err = h.writePending(pending)
	if h.err == nil {
		h.err = h.run()
	}
	switch {
	case h.err == nil:
	case errors.Is(h.err, errIdle), errors.Is(h.err, net.ErrClosed):
		// Idle, or the session already ended: nothing was cut short. Closing
		// wakes the other direction.
		r.sess.conn.Abort()
	default:
		r.sess.conn.Cut(reasonOf(h.err))
	}
}

// done ends the session when the second direction finishes, on one of the
// core's workers: the last byte reports, the metrics and the accounting line
// would grow the small stack of the direction's goroutine.
func (r *tcpRelay) done() {
	if r.running.Add(-1) > 0 {
		return
	}
	r.sess.core.Go(r.end)
}

// end reports what the directions left unreported, then releases their
// grants (in that order: see the usage package's Grant), and ends the
// session. A panic in a report (a recorder's bug) ends only this session, as
// it would on the direction's goroutine.
func (r *tcpRelay) end() {
	defer r.sess.conn.End()
	defer r.lease.release()
	defer r.down.quota.Release()
	defer r.up.quota.Release()
	defer r.sess.core.Recover(r.sess.conn)
	r.sess.reason = r.sess.closeReason(r.down.err, r.up.err)
	r.up.flush()
	r.down.flush()
}

// reasonOf names why a relay error cut a session.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, errStalled):
		return ReasonStalled
	case errors.Is(err, errQuota):
		return metrics.ResetQuota
	}
	return ReasonError
}

// closeReason names why a relay ended, for the accounting line, from the errors
// that ended its two halves. A cut's reason, when the connection was cut, takes
// its place at the session's end.
func (s *Session) closeReason(first, second error) string {
	if errors.Is(first, errIdle) || errors.Is(second, errIdle) {
		return ReasonIdle
	}
	for _, err := range []error{first, second} {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Debug("relay error", "err", err)
			return ReasonError
		}
	}
	return ReasonEOF
}

func (h *halfPipe) writePending(pending []byte) error {
	if len(pending) == 0 {
		return nil
	}
	n, err := h.out.Write(pending)
	h.quota.Use(int64(n))
	h.count(int64(n))
	return err
}

// run relays until EOF (then half-closes dst), idle timeout or error.
func (h *halfPipe) run() error {
	idle := h.sess.conn.pol.Config.Timeouts.Idle
	for {
		if now := time.Now(); now.Sub(h.deadlineAt) >= h.slack {
			h.aside(moveDeadlines)
		}
		n, err := h.step()
		timedOut := err != nil && IsTimeout(err)
		switch {
		case err != nil && !timedOut && h.peerRunning.Load() == 1:
			// The session ends with this direction: the session's end reports
			// the bytes and releases the grant, on a worker (tcpRelay.end).
			h.reportAtEnd = true
		case err != nil && !timedOut, h.unflushed >= reportEvery:
			h.flush() // the other direction goes on, or this one streams
		case (timedOut || time.Since(h.flushed) >= reportInterval) && h.unflushed > 0:
			h.aside(reportBytes) // a paused or slow session's periodic report
		case timedOut:
			h.flushed = time.Now() // nothing to report: no helper goroutine
		}
		switch {
		case err == nil:
		case timedOut && (n > 0 || !h.sess.IdleFor(idle)):
		case timedOut:
			return errIdle
		case errors.Is(err, io.EOF):
			// When the other direction is done too, the close that follows at once
			// sends the FIN; a shutdown first would be a system call for nothing.
			if h.peerRunning.Load() > 1 {
				closeWrite(h.dst)
			}
			return nil
		default:
			return err
		}
	}
}

// setDeadlines bounds the next steps: reads wake at least every reportInterval
// (to report bytes and check for idleness); a write that makes no progress for
// timeouts.idle fails (see stallDeadline), so a peer that stops reading cannot
// hold the session forever. A read that times out loses nothing, and a write
// that times out is retried while it progresses, so no byte taken from src is
// dropped before then.
func (h *halfPipe) setDeadlines(now time.Time) {
	idle := h.sess.conn.pol.Config.Timeouts.Idle
	h.deadlineAt = now
	h.src.SetReadDeadline(now.Add(min(idle, reportInterval)))
	h.dst.SetWriteDeadline(now.Add(idle))
	h.out.stall.probe.setMark()
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

func (s *Session) acquire() sessionLease { return sessionLease{s.core.Lease(s.Who(), s.app)} }

// Lease returns a lease on who's buckets for app class app, or nil when the
// core has no shaper. The caller releases it.
func (c *Core) Lease(who shaping.Who, app string) *shaping.Lease {
	if c.shaper == nil {
		return nil
	}
	return c.shaper.Acquire(who, app)
}

func (l sessionLease) release() {
	if l.Lease != nil {
		l.Lease.Release()
	}
}

// A ReadWaiter is a source that is no socket but can wait for bytes without
// being handed a buffer (an HTTP/2 stream, whose client's DATA frames its front
// reads ahead). A relay direction reading one waits there, as it waits for a
// socket's readiness, and takes a copy buffer only for the bytes that are
// there: an idle stream then holds none.
type ReadWaiter interface {
	// WaitRead blocks until a Read would not block, honouring the read
	// deadline, and returns how many bytes a Read would return now; 0 with a
	// nil error means the end of the stream.
	WaitRead() (int, error)
}

package tunnel

import (
	"io"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
)

// Meter passes one direction of a session's bytes through its buckets and
// counts them, for a front whose library reads and writes the framing itself
// (the HTTP/2 front's forwarded requests, read and written with net/http's
// Request.Write and ReadResponse): its Reader and Writer shape and count what
// goes through them as [Session.Copy] does. Get one from [Session.Meter] once
// the session is open and classified, and Close it when the transfer ends. A
// Meter is not safe for concurrent use.
type Meter struct {
	s         *Session
	direction string
	chain     *shaping.Chain // nil without a shaper
	pacer     *shaping.Pacer
	throttled int64Adder
	count     countingWriter // counts; its w is unused
}

// int64Adder is the part of atomic.Int64 a Meter adds waits to.
type int64Adder interface{ Add(int64) int64 }

// Meter returns a Meter of the session's direction (metrics.DirectionUpload:
// client to destination).
func (s *Session) Meter(direction string) *Meter {
	if s.lease.Lease == nil && s.core.shaper != nil {
		s.lease = s.acquire()
	}
	m := &Meter{s: s, direction: direction, count: countingWriter{s: s, direction: direction}}
	m.throttled = &s.throttledDown
	if direction == metrics.DirectionUpload {
		m.throttled = &s.throttledUp
	}
	if s.lease.Lease != nil {
		m.chain = s.lease.Download()
		if direction == metrics.DirectionUpload {
			m.chain = s.lease.Upload()
		}
		m.pacer = shaping.NewPacer(m.chain)
	}
	return m
}

// pass takes n bytes' worth of tokens, waiting for them while the chain is
// limited, and counts them.
func (m *Meter) pass(n int) error {
	if m.pacer != nil && m.chain.Limited() {
		m.s.tokenWaits.Add(1)
		waited, err := m.pacer.Wait(m.s.conn.ctx, n)
		m.s.tokenWaits.Add(-1)
		if waited > 0 {
			m.throttled.Add(int64(waited))
			m.s.core.rec.Throttled(m.s.app, m.direction, waited)
		}
		if err != nil {
			return err
		}
	}
	m.count.add(n)
	return nil
}

// chunk bounds one read or write: a chunk of the chain while it is limited, so
// that sessions on a bucket take turns; anything while it is not.
func (m *Meter) chunk(n int) int {
	if m.chain != nil && m.chain.Limited() {
		return min(n, m.chain.ChunkSize())
	}
	return n
}

// Reader returns r read through the meter: each Read takes at most a chunk,
// and returns once the tokens for what it read are taken.
func (m *Meter) Reader(r io.Reader) io.Reader { return &meterReader{r: r, m: m} }

// Writer returns w written through the meter: each chunk waits for its tokens
// before it is written.
func (m *Meter) Writer(w io.Writer) io.Writer { return &meterWriter{w: w, m: m} }

// Close reports the bytes not reported yet and releases the meter's timer.
func (m *Meter) Close() {
	m.count.flush()
	if m.pacer != nil {
		m.pacer.Stop()
	}
}

type meterReader struct {
	r io.Reader
	m *Meter
}

func (r *meterReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p[:r.m.chunk(len(p))])
	if n > 0 {
		if perr := r.m.pass(n); perr != nil && err == nil {
			err = perr
		}
	}
	return n, err
}

type meterWriter struct {
	w io.Writer
	m *Meter
}

func (w *meterWriter) Write(p []byte) (int, error) {
	written := 0
	for written < len(p) {
		c := w.m.chunk(len(p) - written)
		if err := w.m.pass(c); err != nil {
			return written, err
		}
		n, err := w.w.Write(p[written : written+c])
		written += n
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

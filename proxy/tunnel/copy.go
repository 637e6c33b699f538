package tunnel

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/sockshaper/sockshaper/metrics"
	"github.com/sockshaper/sockshaper/shaping"
)

// copyBufPool holds the buffers of unshaped copies.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// copyBufferSize is about io.Copy's 32 KiB, cut to two HTTP/2 DATA frames that
// each fill one TLS record with their 9-byte header (see h2proxy's
// maxDataPerRecord): a 32 KiB read left an 18-byte frame, a TLS record and a
// system call of its own, after every two full ones. Elsewhere the 18 bytes make
// no difference.
const copyBufferSize = 2 * (16<<10 - 9)

// Copy moves src to dst until src ends, for a front that frames the bytes
// itself (an HTTP request forwarded to its origin, and its response): through
// the session's buckets for direction (metrics.DirectionUpload: client to
// destination), counting the bytes in the session's totals and reporting them,
// and the time waited for tokens, to the recorder as the relay does. The session
// must be open ([Session.Open]) and classified; its lease on the buckets is taken
// at the first Copy and given back when the session ends. A bucket wait ends when
// the connection does. Copy returns the bytes written and the first error other
// than io.EOF. It is not safe to run two Copies of one direction at once.
func (s *Session) Copy(dst io.Writer, src io.Reader, direction string) (int64, error) {
	if s.lease.Lease == nil && s.core.shaper != nil {
		s.lease = s.acquire()
	}
	cw := &countingWriter{w: dst, s: s, direction: direction}
	defer cw.flush()
	var chain *shaping.Chain
	if s.lease.Lease != nil {
		chain = s.lease.Download()
		if direction == metrics.DirectionUpload {
			chain = s.lease.Upload()
		}
	}
	if chain == nil || !chain.Limited() {
		bp := copyBufPool.Get().(*[]byte)
		defer copyBufPool.Put(bp)
		return io.CopyBuffer(cw, onlyReader{src}, *bp)
	}
	throttled := &s.throttledDown
	if direction == metrics.DirectionUpload {
		throttled = &s.throttledUp
	}
	return shaping.Copy(s.conn.ctx, cw, src, chain, func(_ int, waited time.Duration) {
		if waited > 0 {
			throttled.Add(int64(waited))
			s.core.rec.Throttled(s.app, direction, waited)
		}
	})
}

// onlyReader hides a source's WriteTo, so that io.CopyBuffer uses the buffer
// and the counting writer sees every byte.
type onlyReader struct{ io.Reader }

// countingWriter counts what a Copy writes in the session and reports it to the
// recorder in batches, as the relay does.
type countingWriter struct {
	w         io.Writer
	s         *Session
	direction string
	unflushed int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.add(n)
	return n, err
}

// add counts n bytes moved.
func (c *countingWriter) add(n int) {
	if n > 0 {
		c.s.Count(c.direction, int64(n))
		if c.unflushed += int64(n); c.unflushed >= reportEvery {
			c.flush()
		}
	}
}

func (c *countingWriter) flush() {
	if c.unflushed > 0 {
		c.s.core.rec.Transferred(c.s.user, c.s.app, c.direction, metrics.TransportTCP, c.unflushed)
		c.unflushed = 0
	}
}

// Reuse is [Session.Dial] for a destination socket that an earlier session of
// the connection dialled for the same target t (an HTTP keep-alive connection
// sending its next request to the same origin): the policy is checked on the
// address it is connected to and the session is classified, as Dial would, but
// nothing is resolved or dialled. A refusal has the session's result set.
func (s *Session) Reuse(t Target, dst *net.TCPConn) Outcome {
	pol := s.conn.pol
	addr := AddrPortOf(dst.RemoteAddr())
	if rule := s.core.DenyingRule(pol, netip.AddrPortFrom(addr.Addr(), t.Port)); rule != "" {
		return s.denied(rule)
	}
	s.app = pol.Classifier.Classify(shaping.Target{Transport: "tcp", Host: t.Host, Addr: addr.Addr(), Port: t.Port})
	s.dialled = addr.String()
	return Outcome{}
}

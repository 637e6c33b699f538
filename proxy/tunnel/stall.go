package tunnel

import (
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// errStalled says a direction's writes made no progress for the idle timeout:
// the receiver stopped reading (a client that half-closed and went away, say).
// It is not a timeout error, so the relay does not take it for an idle read.
var errStalled = errors.New("peer stopped reading: no write progress for the idle timeout")

// stallDeadline lets a write that waits on a full socket buffer run past the
// write deadline the relay set while the peer keeps taking bytes, and end once
// it has taken none for a whole deadline's length. The relay sets the deadline
// (timeouts.idle ahead) before each step.
type stallDeadline struct {
	conn  net.Conn
	after time.Duration // how far a deadline is moved on progress; 0: not at all
	// writing counts the session's writes under way (nil: not counted): a
	// direction blocked in a write to a slow reader is busy, not idle, however
	// long the write takes (see Session.IdleFor); the stall rule ends it if the
	// reader takes nothing at all.
	writing *atomic.Int32
	// probe, where the connection is a TCP socket, sees the peer take bytes
	// that the socket's buffer holds while no write can go on (nil: not).
	probe *queueProbe
}

// begin and end bracket a write.
func (d *stallDeadline) begin() {
	if d.writing != nil {
		d.writing.Add(1)
	}
}

func (d *stallDeadline) end() {
	if d.writing != nil {
		d.writing.Add(-1)
	}
}

// retry reports whether a write that returned err should be tried again: err is
// a passed deadline, and the write made progress since the deadline was last set,
// or the peer took bytes the socket held (which then moves the deadline on).
func (d *stallDeadline) retry(err error, progressed bool) bool {
	if err == nil || !IsTimeout(err) || d.after <= 0 {
		return false
	}
	if peer := d.probe.progressed(); !progressed && !peer {
		return false
	}
	d.conn.SetWriteDeadline(time.Now().Add(d.after))
	return true
}

// named turns a passed write deadline into errStalled.
func (d *stallDeadline) named(err error) error {
	if err != nil && IsTimeout(err) {
		return errStalled
	}
	return err
}

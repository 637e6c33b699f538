package tunnel

import (
	"io"
	"time"
)

// A relay direction of a user with an allowance moves under a grant of it
// (usage.Grant): each step takes the bytes it moves from the grant, which
// counts them at once where the user's other directions see them, so that
// together they stop at the allowance at any rate, instead of a report (256
// KiB) per session plus whatever moves until a cut lands. A used-up grant is
// renewed after the direction reports its bytes; over an allowance that
// refuses, the session is cut with reason quota.

// quotaPause is how long a direction waits, moving nothing, when its user's
// other directions moved all that is left of the allowance and have not
// reported it yet: their reports (within reportInterval) tell the store
// whether the user is over, which ends the session, or free bytes again.
const quotaPause = 20 * time.Millisecond

// grantedStep is the most a granted splice takes: a pipe's capacity, what one
// splice moves at most.
const grantedStep = 1 << 20

// grant returns how many bytes the step may move under the quota grant
// (usage.NoLimit without an allowance). A used-up grant is renewed first, after
// a report of the bytes moved, so that the store counts them; errQuota when
// the user is over an allowance that refuses; 0 when nothing is free until the
// user's other directions report (see awaitFree).
func (h *halfPipe) grant() (int64, error) {
	if limit := h.quota.Left(); limit > 0 {
		return limit, nil
	}
	if h.streaming {
		h.flush() // its stack has grown anyway
	} else {
		h.aside(reportBytes)
	}
	if limit := h.quota.Left(); limit > 0 {
		return limit, nil
	}
	if h.quota.Refused() {
		return 0, errQuota
	}
	return 0, nil
}

// awaitFree is the step of a direction that finds nothing free: it waits until
// src has bytes (an idle direction costs nothing while it waits), then pauses
// for quotaPause, so that the next step, which asks again, comes after the
// other directions had time to report.
func (h *halfPipe) awaitFree() error {
	if h.ready != nil {
		avail, err := h.ready.wait()
		if err != nil {
			return err
		}
		if avail == 0 {
			return io.EOF
		}
	}
	t := time.NewTimer(quotaPause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-h.sess.conn.ctx.Done():
	}
	return nil
}

// spliceGranted is the step of a user with an allowance where spliceStream
// would be (or where their grant is smaller than a small read): it waits until
// src has bytes, takes what it will move from the grant, and splices that. The
// bytes count for the user's other directions before the splice, however long
// a slow client makes it wait; the readiness check costs a system call per
// step, which only users with an allowance pay.
func (h *halfPipe) spliceGranted() (int64, error) {
	avail, err := h.ready.wait()
	if err != nil {
		return 0, err
	}
	if avail == 0 {
		return 0, io.EOF
	}
	taken := h.quota.Take(int64(min(avail, grantedStep)))
	if taken == 0 {
		return 0, nil // the user's other directions took what is left
	}
	n, err := h.splice.move(int(taken))
	h.quota.Settle(n)
	h.count(n)
	h.streaming = n >= smallReadSize
	return n, err
}

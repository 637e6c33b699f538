package main

import (
	"encoding/binary"
	"time"
)

// flightRing is how many datagrams one association tracks between its oldest
// unanswered one and its newest: their send times live in a ring of this size.
// At a loopback round trip of tens of microseconds and a loss timeout of 200 ms
// a window of 32 spans far less; a full ring only holds back sending until the
// oldest datagram is answered or times out.
const flightRing = 1 << 14

// stampLen is the part of a datagram's payload sockbench reads back: the
// sequence number and the send time (nanoseconds since the run began), both
// big-endian uint64.
const stampLen = 16

// udpFlight is one association's accounting of datagrams in flight. Datagrams
// are numbered from 0; each is either echoed (seen), presumed lost after the
// loss timeout and replaced, or still in flight. A presumed lost datagram that
// is echoed later counts as received and as late. Not safe for concurrent use:
// one goroutine sends and receives.
type udpFlight struct {
	window  int
	timeout time.Duration
	limit   uint64 // most datagrams to send, which bounds memory

	seen   []uint64                  // bitset of echoed sequence numbers
	sentAt [flightRing]time.Duration // send times of [head, next), by seq % flightRing
	head   uint64                    // oldest datagram neither echoed nor presumed lost, or next
	next   uint64                    // sequence number of the next datagram
	ahead  int                       // echoed datagrams in (head, next)

	received      int64 // distinct datagrams echoed, in the run and after it
	receivedInRun int64 // the part echoed before the run's end
	late          int64 // echoed after being presumed lost
	timeouts      int64 // presumed lost, whether or not they came back later
	bad           int64 // replies that were no echo of a datagram sent, or a repeat
	rtts          []time.Duration
}

func newUDPFlight(window int, timeout time.Duration, limit uint64) *udpFlight {
	return &udpFlight{window: window, timeout: timeout, limit: limit}
}

func (f *udpFlight) isSeen(seq uint64) bool { return f.seen[seq/64]&(1<<(seq%64)) != 0 }

// outstanding is how many datagrams are in flight and not yet presumed lost.
func (f *udpFlight) outstanding() int { return int(f.next-f.head) - f.ahead }

// canSend reports whether the window has room and the limits allow another.
func (f *udpFlight) canSend() bool {
	return f.outstanding() < f.window && f.next < f.limit && f.next-f.head < flightRing
}

// stamp writes the next datagram's sequence number and send time at the start of
// payload and records the send; call it only when canSend.
func (f *udpFlight) stamp(payload []byte, now time.Duration) {
	seq := f.next
	binary.BigEndian.PutUint64(payload, seq)
	binary.BigEndian.PutUint64(payload[8:], uint64(now))
	f.sentAt[seq%flightRing] = now
	if seq/64 >= uint64(len(f.seen)) {
		f.seen = append(f.seen, 0)
	}
}

// sent records that the datagram stamped last went out; a failed send is not
// recorded, and the same sequence number is stamped again.
func (f *udpFlight) sent() { f.next++ }

// echoed records a reply's payload at now; inRun says whether the run was still
// on. It returns false for a reply that is no echo of a datagram sent (wrong
// length or pattern, unknown sequence number) or repeats one already seen.
func (f *udpFlight) echoed(payload, want []byte, now time.Duration, inRun bool) bool {
	if len(payload) != len(want) || string(payload[stampLen:]) != string(want[stampLen:]) {
		f.bad++
		return false
	}
	seq := binary.BigEndian.Uint64(payload)
	if seq >= f.next || f.isSeen(seq) {
		f.bad++
		return false
	}
	f.seen[seq/64] |= 1 << (seq % 64)
	f.received++
	if inRun {
		f.receivedInRun++
	}
	f.rtts = append(f.rtts, now-time.Duration(binary.BigEndian.Uint64(payload[8:])))
	if seq < f.head {
		f.late++
		return true
	}
	f.ahead++
	f.advance()
	return true
}

// advance moves head past echoed datagrams.
func (f *udpFlight) advance() {
	for f.head < f.next && f.isSeen(f.head) {
		f.head++
		f.ahead--
	}
}

// expire presumes lost every datagram at the head sent timeout or more before
// now, so that a lost datagram frees its place in the window.
func (f *udpFlight) expire(now time.Duration) {
	for f.head < f.next && now-f.sentAt[f.head%flightRing] >= f.timeout {
		f.head++
		f.timeouts++
		f.advance()
	}
}

// expiry returns when the oldest datagram in flight times out, and false when
// none is in flight.
func (f *udpFlight) expiry() (time.Duration, bool) {
	if f.head == f.next {
		return 0, false
	}
	return f.sentAt[f.head%flightRing] + f.timeout, true
}

// lost is how many datagrams sent were never echoed.
func (f *udpFlight) lost() int64 { return int64(f.next) - f.received }

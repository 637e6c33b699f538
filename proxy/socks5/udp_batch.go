package socks5

import (
	"net/netip"
	"sync"

	"github.com/sockshaper/sockshaper/internal/dscp"
)

// udpBatch is what an association borrows while it relays the datagrams that one
// wake of its socket found: up to udpBatchLen of them, read with one system call
// where the system has one for that (recvmmsg on Linux), and the datagrams they
// become, sent with one more (sendmmsg). A batch is never waited for: the reader
// takes what is queued and returns, so a lone datagram goes out as soon as
// before, and a loaded association pays two system calls per batch instead of
// two per datagram.
//
// Each datagram has a buffer of its own with room for a reply header in front
// (udpBufSize), so no datagram is truncated, and a reply goes out of the buffer
// it came in. The buffers are most of a batch's size; a batch lives in a pool
// and is borrowed only while datagrams are relayed, so an association waiting
// for its next datagram holds none, and the pool holds about one batch per
// association being relayed at a moment, not one per association. Untouched
// pages of a buffer cost no memory: a 200-byte datagram writes one page.
type udpBatch struct {
	n     int // datagrams read
	bufs  [udpBatchLen][udpBufSize]byte
	size  [udpBatchLen]int            // payload bytes of each, at maxReplyHeader
	from  [udpBatchLen]netip.AddrPort // source of each
	sends [udpBatchLen]udpSend        // datagrams queued to go, in arrival order
	nsend int
	sys   batchSys // the system calls' own arrays
}

// udpBatches holds the batches not in use.
var udpBatches = sync.Pool{New: func() any { return newUDPBatch() }}

// udpSend is a datagram queued in a batch: where it goes, how it is marked, and
// what the relay accounts once it went (err says it did not).
type udpSend struct {
	b       []byte // into the batch's buffer it came in
	dst     netip.AddrPort
	mark    dscp.Mark
	app     string
	payload int  // the bytes counted: the payload, without the header
	up      bool // from the client to a peer; false: a reply to the client
	err     error
}

// queue adds a datagram to the batch's sends.
func (b *udpBatch) queue(s udpSend) {
	b.sends[b.nsend] = s
	b.nsend++
}

// relay handles each datagram of the batch in arrival order, then sends what
// they became and accounts for each.
func (a *association) relay(b *udpBatch) {
	for i := range b.n {
		a.handle(b, i)
	}
	a.flush(b)
}

// flush sends the batch's queued datagrams and accounts for each: bytes,
// class and first destination for those that went, a drop for those that did
// not. A datagram is accounted only once it went, as when each was sent alone.
func (a *association) flush(b *udpBatch) {
	if b.nsend == 0 {
		return
	}
	a.writer.send(b)
	for i := range b.nsend {
		s := &b.sends[i]
		switch {
		case s.err != nil:
			a.drops.send++
			a.dropped(s.dst, "send_failed", s.err)
		case s.up:
			a.noteClass(s.app)
			// The accounting line names the first destination; the session reads
			// it only after this goroutine has ended.
			a.sess.NotePeer(s.dst)
			a.up.add(s.app, s.payload)
		default:
			a.down.add(s.app, s.payload)
		}
		*s = udpSend{} // drop the references to the buffer and the class
	}
	b.nsend = 0
}

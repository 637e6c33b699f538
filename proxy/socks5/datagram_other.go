//go:build !linux

package socks5

import (
	"net"
	"net/netip"
)

// udpBatchLen: systems without the Linux calls read and send one datagram at a
// time.
const udpBatchLen = 1

// batchSys is empty without the Linux calls.
type batchSys struct{}

func newUDPBatch() *udpBatch { return new(udpBatch) }

// udpReader on systems without the Linux calls: the read itself waits for a
// datagram, so an association holds a pooled batch while it waits.
type udpReader struct {
	c     *net.UDPConn
	relay func(*udpBatch)
}

func newUDPReader(c *net.UDPConn, relay func(*udpBatch)) (*udpReader, error) {
	return &udpReader{c: c, relay: relay}, nil
}

// run reads one datagram at a time and relays it, until the socket fails or
// is closed.
func (r *udpReader) run() error {
	for {
		b := udpBatches.Get().(*udpBatch)
		n, from, err := r.c.ReadFromUDPAddrPort(b.bufs[0][maxReplyHeader:])
		if err != nil {
			udpBatches.Put(b)
			return err
		}
		b.n, b.size[0], b.from[0] = 1, n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		r.relay(b)
		udpBatches.Put(b)
	}
}

// udpWriter on systems without the Linux calls sends through the net package,
// one datagram at a time.
type udpWriter struct{ c *net.UDPConn }

func newUDPWriter(c *net.UDPConn) (*udpWriter, error) { return &udpWriter{c: c}, nil }

func (w *udpWriter) send(b *udpBatch) {
	for i := range b.nsend {
		s := &b.sends[i]
		_, s.err = s.mark.WriteTo(w.c, s.b, s.dst)
	}
}

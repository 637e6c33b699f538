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
	batch *udpBatch
}

func newUDPReader(c *net.UDPConn) (*udpReader, error) { return &udpReader{c: c}, nil }

func (r *udpReader) read() (*udpBatch, error) {
	b := udpBatches.Get().(*udpBatch)
	r.batch = b
	n, from, err := r.c.ReadFromUDPAddrPort(b.bufs[0][maxReplyHeader:])
	if err != nil {
		r.release()
		return nil, err
	}
	b.n, b.size[0], b.from[0] = 1, n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return b, nil
}

func (r *udpReader) release() {
	if r.batch != nil {
		udpBatches.Put(r.batch)
		r.batch = nil
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

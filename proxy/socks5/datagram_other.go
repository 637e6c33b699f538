//go:build !linux

package socks5

import (
	"net"
	"net/netip"

	"github.com/sockshaper/sockshaper/internal/dscp"
)

// udpReader on systems without the Linux calls: the read itself waits for a
// datagram, so an association holds a pooled buffer while it waits.
type udpReader struct {
	c   *net.UDPConn
	buf *[udpBufSize]byte
}

func newUDPReader(c *net.UDPConn) (*udpReader, error) { return &udpReader{c: c}, nil }

func (r *udpReader) read() (*[udpBufSize]byte, int, netip.AddrPort, error) {
	r.buf = udpBufs.Get().(*[udpBufSize]byte)
	n, from, err := r.c.ReadFromUDPAddrPort(r.buf[maxReplyHeader:])
	if err != nil {
		r.release()
		return nil, 0, netip.AddrPort{}, err
	}
	return r.buf, n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), nil
}

func (r *udpReader) release() {
	if r.buf != nil {
		udpBufs.Put(r.buf)
		r.buf = nil
	}
}

// udpWriter on systems without the Linux calls sends through the net package.
type udpWriter struct{ c *net.UDPConn }

func newUDPWriter(c *net.UDPConn) (*udpWriter, error) { return &udpWriter{c: c}, nil }

func (w *udpWriter) write(m dscp.Mark, b []byte, dst netip.AddrPort) (int, error) {
	return m.WriteTo(w.c, b, dst)
}

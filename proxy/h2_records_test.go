package proxy

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// recordCounter counts the TLS records a connection reads, from their 5-byte
// headers, below the TLS client.
type recordCounter struct {
	net.Conn
	records  atomic.Int64
	header   [5]byte
	inHeader int // header bytes of the current record seen so far
	left     int // bytes of the current record's body still to come
}

func (r *recordCounter) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	for b := p[:n]; len(b) > 0; {
		if r.left > 0 {
			k := min(r.left, len(b))
			r.left -= k
			b = b[k:]
			continue
		}
		k := copy(r.header[r.inHeader:], b)
		r.inHeader += k
		b = b[k:]
		if r.inHeader == len(r.header) {
			r.inHeader = 0
			r.left = int(binary.BigEndian.Uint16(r.header[3:]))
			r.records.Add(1)
		}
	}
	return n, err
}

// TestHTTP2DataFramesFillTLSRecords downloads through a CONNECT stream and
// counts the TLS records it took. A DATA frame of 16 KiB and its 9-byte header
// do not fit in one record (16 KiB of plain text at most), so TLS sent each
// frame as a full record and a 9-byte one; and a 32 KiB copy buffer cut into
// frames of at most 16,375 bytes left an 18-byte frame after every two. Either
// doubles the records, system calls and TCP segments of a download on HTTP/2.
func TestHTTP2DataFramesFillTLSRecords(t *testing.T) {
	const size = 8 << 20
	h := newHarness(t, "")
	addr, cfg := startTLSHarness(t, h)
	target := startTarget(t, func(c net.Conn) { c.Write(make([]byte, size)); c.Close() })
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	rc := &recordCounter{Conn: raw}
	c := tls.Client(rc, cfg)
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	// Windows large enough that flow control never cuts a frame short.
	fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	fr.WriteWindowUpdate(0, 1<<30)
	var hbuf bytesBuffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range [][2]string{{":method", "CONNECT"}, {":authority", target},
		{"proxy-authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+testPassword))}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hbuf, EndHeaders: true})
	var got, frames, small, before int64
	for got < size {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				fr.WriteSettingsAck()
			}
		case *http2.MetaHeadersFrame:
			if f.PseudoValue("status") != "200" {
				t.Fatalf("CONNECT answered %v", f.Fields)
			}
			before = rc.records.Load()
		case *http2.DataFrame:
			n := int64(len(f.Data()))
			if n > 16<<10-9 {
				t.Errorf("a DATA frame of %d bytes: with its header it needs two TLS records", n)
			}
			got += n
			frames++
			if n < 1<<10 {
				small++
			}
		case *http2.RSTStreamFrame, *http2.GoAwayFrame:
			t.Fatalf("after %d bytes: %v", got, f)
		}
	}
	records := rc.records.Load() - before
	fewest := int64(size / (16<<10 - 9))
	t.Logf("%d bytes in %d DATA frames (%d under 1 KiB) and %d TLS records; the fewest possible: %d",
		got, frames, small, records, fewest)
	// Short reads from the target make some frames short; each still takes one
	// record. Two records a frame, or an 18-byte frame after every two, would
	// be 2.0 or 1.5 times the fewest.
	if records > fewest*5/4 {
		t.Errorf("%d TLS records for %d bytes, want at most %d (1.25 times the fewest)", records, got, fewest*5/4)
	}
}

// bytesBuffer is a byte slice that hpack's encoder appends to.
type bytesBuffer []byte

func (b *bytesBuffer) Write(p []byte) (int, error) { *b = append(*b, p...); return len(p), nil }

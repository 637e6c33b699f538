package shaping

import (
	"errors"
	"fmt"
)

// MaxClientHelloBytes is the most a caller needs to buffer from a client before
// ParseClientHelloSNI decides: a TLS record header (5 bytes) and the largest
// payload a plaintext record may carry (2^14, RFC 8446 section 5.1). Only the
// first record is parsed, so with this many bytes the answer is never
// [ErrIncomplete]. Real ClientHellos are 0.2–2 KiB, post-quantum key shares
// included, so a caller that reads as the bytes come rarely buffers more than that.
const MaxClientHelloBytes = 5 + 16<<10

const (
	recordHeaderLen     = 5
	maxRecordPayload    = 1 << 14
	recordTypeHandshake = 0x16
	typeClientHello     = 1
	extServerName       = 0
	nameTypeHostName    = 0
	maxHostNameLen      = 255 // RFC 1035 section 2.3.4
	// minHelloBody is a ClientHello body with no session ID, one cipher suite, one
	// compression method and no extensions: version 2, random 32, 1+0, 2+2, 1+1.
	minHelloBody = 2 + 32 + 1 + 4 + 2
)

var (
	// ErrIncomplete means the bytes given are a valid beginning of a TLS record
	// carrying a ClientHello, and more are needed to find the server name.
	ErrIncomplete = errors.New("shaping: incomplete TLS ClientHello")
	// ErrNotClientHello means the bytes given cannot begin a TLS ClientHello
	// record, or the ClientHello is malformed.
	ErrNotClientHello = errors.New("shaping: not a TLS ClientHello")
	// errSplit is returned for a ClientHello that continues in a later record
	// without the server name in the first one: reassembly is not worth it for
	// hellos that large, and the session is classified without SNI either way.
	errSplit = fmt.Errorf("%w: split across records", ErrNotClientHello)
)

// ParseClientHelloSNI returns the server_name (RFC 6066) of the TLS ClientHello
// that b, the first bytes a client sent, begins with. It returns ("", nil) for a
// ClientHello without one, [ErrIncomplete] when b is a valid prefix that needs
// more bytes, and an error matching [ErrNotClientHello] when b cannot be a
// ClientHello (often from its first byte, so plaintext protocols are told apart at
// once). Only the first TLS record is parsed. The name is returned as sent;
// matching ignores its case. It never panics and never reads beyond b.
func ParseClientHelloSNI(b []byte) (string, error) {
	frag, complete, err := firstRecord(b)
	if err != nil {
		return "", err
	}
	short := ErrIncomplete
	if complete {
		short = errSplit
	}
	if len(frag) > 0 && frag[0] != typeClientHello {
		return "", ErrNotClientHello
	}
	if len(frag) < 4 {
		return "", short
	}
	n := int(frag[1])<<16 | int(frag[2])<<8 | int(frag[3])
	if n < minHelloBody {
		return "", ErrNotClientHello
	}
	body := frag[4:]
	if len(body) > n {
		body = body[:n]
	}
	r := helloReader{b: body, end: n, short: short}
	return r.serverName()
}

// firstRecord checks b's record header with as many bytes as b has, and returns
// the part of the first record's payload that b holds and whether it is whole.
func firstRecord(b []byte) (frag []byte, complete bool, err error) {
	if len(b) > 0 && b[0] != recordTypeHandshake {
		return nil, false, ErrNotClientHello
	}
	if len(b) > 1 && b[1] != 3 { // every SSL 3.0 to TLS 1.3 record says 3.x
		return nil, false, ErrNotClientHello
	}
	if len(b) < recordHeaderLen {
		return nil, false, ErrIncomplete
	}
	n := int(b[3])<<8 | int(b[4])
	if n == 0 || n > maxRecordPayload {
		return nil, false, ErrNotClientHello
	}
	frag = b[recordHeaderLen:]
	if len(frag) >= n {
		return frag[:n], true, nil
	}
	return frag, false, nil
}

// helloReader reads a ClientHello body of declared length end of which the
// first len(b) bytes are present. Its first error sticks, and reads after it
// return zero values, so the parser checks r.err only where it decides.
type helloReader struct {
	b     []byte
	end   int
	off   int
	short error // what running out of present bytes means
	err   error
}

// next returns the next n bytes, or nil and sets r.err: ErrNotClientHello when
// they would pass the declared end, r.short when they are not present yet.
func (r *helloReader) next(n int) []byte {
	switch {
	case r.err != nil:
		return nil
	case r.off+n > r.end:
		r.err = ErrNotClientHello
		return nil
	case r.off+n > len(r.b):
		r.err = r.short
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *helloReader) u8() int {
	if s := r.next(1); s != nil {
		return int(s[0])
	}
	return 0
}

func (r *helloReader) u16() int {
	if s := r.next(2); s != nil {
		return int(s[0])<<8 | int(s[1])
	}
	return 0
}

// fail records a malformed field unless an earlier error explains it.
func (r *helloReader) fail() {
	if r.err == nil {
		r.err = ErrNotClientHello
	}
}

// serverName walks the fixed fields (RFC 8446 section 4.1.2) to the extensions
// and returns the host name of the server_name extension.
func (r *helloReader) serverName() (string, error) {
	if r.u16()>>8 != 3 {
		r.fail()
	}
	r.next(32) // random
	if n := r.u8(); n <= 32 {
		r.next(n) // legacy_session_id
	} else {
		r.fail()
	}
	if n := r.u16(); n >= 2 && n%2 == 0 {
		r.next(n) // cipher_suites
	} else {
		r.fail()
	}
	if n := r.u8(); n >= 1 {
		r.next(n) // legacy_compression_methods
	} else {
		r.fail()
	}
	if r.err != nil || r.off == r.end { // a hello may end before extensions
		return "", r.err
	}
	if n := r.u16(); n != r.end-r.off && r.err == nil {
		r.fail() // extensions must fill the rest of the body exactly
	}
	for r.err == nil && r.off < r.end {
		typ, n := r.u16(), r.u16()
		data := r.next(n)
		if r.err == nil && typ == extServerName {
			return hostName(data)
		}
	}
	return "", r.err
}

// hostName returns the host_name entry of a server_name extension's data.
func hostName(data []byte) (string, error) {
	if len(data) < 2 || int(data[0])<<8|int(data[1]) != len(data)-2 {
		return "", ErrNotClientHello
	}
	list := data[2:]
	for len(list) >= 3 {
		typ, n := list[0], int(list[1])<<8|int(list[2])
		if len(list) < 3+n {
			return "", ErrNotClientHello
		}
		name := list[3 : 3+n]
		if typ == nameTypeHostName {
			if !validHostName(name) {
				return "", ErrNotClientHello
			}
			return string(name), nil
		}
		list = list[3+n:]
	}
	if len(list) != 0 {
		return "", ErrNotClientHello
	}
	return "", nil
}

// validHostName reports whether name could be a DNS name: 1 to 255 printable
// ASCII bytes. The name ends up in logs and in matching, so control bytes and
// spaces are refused rather than passed on.
func validHostName(name []byte) bool {
	if len(name) == 0 || len(name) > maxHostNameLen {
		return false
	}
	for _, c := range name {
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

package shaping

import (
	"bytes"
	"crypto/tls"
	"errors"
	"testing"
)

// helloSpec builds synthetic ClientHellos for the malformed cases real clients
// never send. Zero fields take a valid default.
type helloSpec struct {
	version     uint16 // 0: TLS 1.2's 0x0303
	sid         []byte
	ciphers     []byte // nil: TLS_AES_128_GCM_SHA256
	comps       []byte // nil: null compression
	exts        []byte // the extensions block's contents; nil: no block at all
	extLenDelta int    // added to the block's length field
}

func (h helloSpec) body() []byte {
	if h.version == 0 {
		h.version = 0x0303
	}
	if h.ciphers == nil {
		h.ciphers = []byte{0x13, 0x01}
	}
	if h.comps == nil {
		h.comps = []byte{0}
	}
	b := u16(int(h.version))
	b = append(b, make([]byte, 32)...) // random
	b = append(append(b, byte(len(h.sid))), h.sid...)
	b = append(append(b, u16(len(h.ciphers))...), h.ciphers...)
	b = append(append(b, byte(len(h.comps))), h.comps...)
	if h.exts != nil {
		b = append(append(b, u16(len(h.exts)+h.extLenDelta)...), h.exts...)
	}
	return b
}

// with returns the record of h changed by f.
func (h helloSpec) with(f func(*helloSpec)) []byte {
	f(&h)
	return record(handshakeMsg(typeClientHello, h.body()))
}

func u16(n int) []byte { return []byte{byte(n >> 8), byte(n)} }

func ext(typ uint16, data []byte) []byte {
	return append(append(u16(int(typ)), u16(len(data))...), data...)
}

func sniExt(name string) []byte {
	entry := append(append([]byte{nameTypeHostName}, u16(len(name))...), name...)
	return ext(extServerName, append(u16(len(entry)), entry...))
}

func handshakeMsg(typ byte, body []byte) []byte {
	return append([]byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

func record(payload []byte) []byte {
	return append([]byte{recordTypeHandshake, 3, 1, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

// splitHello returns a ClientHello with extensions first then second, split in
// two records 10 bytes into second.
func splitHello(t testing.TB, first, second []byte) []byte {
	t.Helper()
	msg := handshakeMsg(typeClientHello, helloSpec{exts: append(bytes.Clone(first), second...)}.body())
	cut := len(msg) - len(second) + 10
	return append(record(msg[:cut]), record(msg[cut:])...)
}

// FuzzParseClientHelloSNI checks that the parser never panics or reads past b
// (the fuzzer's input has no spare capacity), that it returns only its
// documented results, and that it is consistent across prefixes: a decided
// answer stays when bytes are added, and a prefix of an incomplete hello is
// incomplete too.
func FuzzParseClientHelloSNI(f *testing.F) {
	for _, tc := range realHellos(f) {
		f.Add(tc.hello)
		f.Add(tc.hello[:len(tc.hello)/2])
	}
	f.Add(goClientHello(f, &tls.Config{ServerName: "a.skype.com", MinVersion: tls.VersionTLS13}))
	f.Add(splitHello(f, ext(0x0015, make([]byte, 30)), sniExt("skype.com")))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		b = b[:len(b):len(b)]
		name, err := ParseClientHelloSNI(b)
		switch {
		case err == nil:
			if name != "" && !validHostName([]byte(name)) {
				t.Fatalf("invalid name %q", name)
			}
		case err == ErrIncomplete:
			if len(b) >= MaxClientHelloBytes {
				t.Fatalf("%d bytes incomplete", len(b))
			}
			if _, err := ParseClientHelloSNI(b[: len(b)/2 : len(b)/2]); err != ErrIncomplete {
				t.Fatalf("half of an incomplete hello gave %v", err)
			}
			return
		case errors.Is(err, ErrNotClientHello):
		default:
			t.Fatalf("undocumented error %v", err)
		}
		more := append(bytes.Clone(b), 0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5)
		if name2, err2 := ParseClientHelloSNI(more); name2 != name || err2 != err {
			t.Fatalf("adding bytes changed %q, %v to %q, %v", name, err, name2, err2)
		}
	})
}

func TestMaxClientHelloBytes(t *testing.T) {
	if MaxClientHelloBytes != recordHeaderLen+maxRecordPayload {
		t.Errorf("MaxClientHelloBytes = %d, want a record header and a full record", MaxClientHelloBytes)
	}
}

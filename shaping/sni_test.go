package shaping

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// recordingConn records what a TLS client writes and ends its handshake by
// answering every read with EOF.
type recordingConn struct {
	net.Conn // nil: the handshake calls only Read, Write and Close
	written  bytes.Buffer
}

func (c *recordingConn) Write(b []byte) (int, error) { return c.written.Write(b) }
func (c *recordingConn) Read([]byte) (int, error)    { return 0, io.EOF }
func (c *recordingConn) Close() error                { return nil }

// goClientHello returns the first TLS record crypto/tls writes as a client with
// cfg: its ClientHello.
func goClientHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	conn := &recordingConn{}
	if err := tls.Client(conn, cfg).Handshake(); err == nil {
		t.Fatal("handshake against EOF succeeded")
	}
	b := conn.written.Bytes()
	if len(b) < recordHeaderLen {
		t.Fatalf("client wrote %d bytes", len(b))
	}
	n := recordHeaderLen + (int(b[3])<<8 | int(b[4]))
	return bytes.Clone(b[:n])
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// realHellos are ClientHellos of real clients and the server name each carries.
func realHellos(t testing.TB) map[string]struct {
	hello []byte
	name  string
} {
	type h = struct {
		hello []byte
		name  string
	}
	return map[string]h{
		"go default": {goClientHello(t, &tls.Config{ServerName: "teams.microsoft.com"}), "teams.microsoft.com"},
		"go tls12": {goClientHello(t, &tls.Config{ServerName: "Web.Skype.com", MaxVersion: tls.VersionTLS12}),
			"Web.Skype.com"},
		"go tls13 no pq": {goClientHello(t, &tls.Config{ServerName: "teams.live.com",
			CurvePreferences: []tls.CurveID{tls.X25519}}), "teams.live.com"},
		"go ip no sni":  {goClientHello(t, &tls.Config{ServerName: "52.112.0.1", InsecureSkipVerify: true}), ""},
		"go no name":    {goClientHello(t, &tls.Config{InsecureSkipVerify: true}), ""},
		"openssl teams": {fixture(t, "openssl_teams.bin"), "teams.microsoft.com"},
		"openssl none":  {fixture(t, "openssl_nosni.bin"), ""},
		"curl skype":    {fixture(t, "curl_skype.bin"), "web.skype.com"},
	}
}

func TestParseClientHelloSNIReal(t *testing.T) {
	for name, tc := range realHellos(t) {
		t.Run(name, func(t *testing.T) {
			got, err := ParseClientHelloSNI(tc.hello)
			if err != nil || got != tc.name {
				t.Fatalf("ParseClientHelloSNI = %q, %v; want %q, nil", got, err, tc.name)
			}
			// What follows the first record (more records, application data)
			// does not matter.
			more := append(bytes.Clone(tc.hello), 0x17, 0x03, 0x03, 0xff, 0xff)
			if got, err := ParseClientHelloSNI(more); err != nil || got != tc.name {
				t.Fatalf("with trailing bytes = %q, %v; want %q, nil", got, err, tc.name)
			}
		})
	}
}

// TestParseClientHelloSNITruncated checks every prefix of real hellos: before
// the last byte of the name it needs more bytes, from there on it has the name.
func TestParseClientHelloSNITruncated(t *testing.T) {
	for name, tc := range realHellos(t) {
		t.Run(name, func(t *testing.T) {
			decided := len(tc.hello) // no name: only the whole record decides
			if tc.name != "" {
				decided = bytes.Index(tc.hello, []byte(tc.name)) + len(tc.name)
			}
			for k := range len(tc.hello) + 1 {
				got, err := ParseClientHelloSNI(tc.hello[:k:k])
				switch {
				case k < decided && err != ErrIncomplete:
					t.Fatalf("prefix %d/%d = %q, %v; want ErrIncomplete", k, len(tc.hello), got, err)
				case k >= decided && (err != nil || got != tc.name):
					t.Fatalf("prefix %d/%d = %q, %v; want %q", k, len(tc.hello), got, err, tc.name)
				}
			}
		})
	}
}

func TestParseClientHelloSNIGarbage(t *testing.T) {
	ok := helloSpec{exts: sniExt("skype.com")}
	tests := []struct {
		name string
		b    []byte
		want string
		err  error
	}{
		{"empty", nil, "", ErrIncomplete},
		{"type byte only", []byte{0x16}, "", ErrIncomplete},
		{"header prefix", []byte{0x16, 0x03, 0x01, 0x02}, "", ErrIncomplete},
		{"http", []byte("GET / HTTP/1.1\r\nHost: skype.com\r\n\r\n"), "", ErrNotClientHello},
		{"ssh", []byte("SSH-2.0-OpenSSH_9.6\r\n"), "", ErrNotClientHello},
		{"http first byte", []byte("G"), "", ErrNotClientHello},
		{"application data", []byte{0x17, 0x03, 0x03, 0x00, 0x10}, "", ErrNotClientHello},
		{"record version 2", []byte{0x16, 0x02}, "", ErrNotClientHello},
		{"record length 0", []byte{0x16, 0x03, 0x01, 0x00, 0x00}, "", ErrNotClientHello},
		{"record too long", []byte{0x16, 0x03, 0x01, 0x40, 0x01}, "", ErrNotClientHello},
		{"server hello", record(handshakeMsg(2, ok.body())), "", ErrNotClientHello},
		{"body too short", record(handshakeMsg(1, make([]byte, minHelloBody-1))), "", ErrNotClientHello},
		{"body version 2", ok.with(func(h *helloSpec) { h.version = 0x0203 }), "", ErrNotClientHello},
		{"session id 33", ok.with(func(h *helloSpec) { h.sid = make([]byte, 33) }), "", ErrNotClientHello},
		{"odd cipher suites", ok.with(func(h *helloSpec) { h.ciphers = []byte{0x13, 0x01, 0x13} }), "", ErrNotClientHello},
		{"no cipher suites", ok.with(func(h *helloSpec) { h.ciphers = []byte{} }), "", ErrNotClientHello},
		{"no compression", ok.with(func(h *helloSpec) { h.comps = []byte{} }), "", ErrNotClientHello},
		{"extensions overrun block", ok.with(func(h *helloSpec) { h.exts = ext(0xff01, []byte{1})[:4] }), "", ErrNotClientHello},
		{"extensions length wrong", ok.with(func(h *helloSpec) { h.extLenDelta = -1 }), "", ErrNotClientHello},
		{"name list length wrong", ok.with(func(h *helloSpec) { h.exts = ext(extServerName, []byte{0, 9, 0, 0, 1, 'a'}) }), "", ErrNotClientHello},
		{"name entry overruns", ok.with(func(h *helloSpec) { h.exts = ext(extServerName, []byte{0, 4, 0, 0, 9, 'a'}) }), "", ErrNotClientHello},
		{"empty name", ok.with(func(h *helloSpec) { h.exts = sniExt("") }), "", ErrNotClientHello},
		{"control byte in name", ok.with(func(h *helloSpec) { h.exts = sniExt("skype\x00.com") }), "", ErrNotClientHello},
		{"space in name", ok.with(func(h *helloSpec) { h.exts = sniExt("skype com") }), "", ErrNotClientHello},
		{"name too long", ok.with(func(h *helloSpec) { h.exts = sniExt(string(bytes.Repeat([]byte("a"), 256))) }), "", ErrNotClientHello},
		{"only other name types", ok.with(func(h *helloSpec) { h.exts = ext(extServerName, []byte{0, 4, 1, 0, 1, 'a'}) }), "", nil},
		{"no extensions", ok.with(func(h *helloSpec) { h.exts = nil }), "", nil},
		{"no sni extension", ok.with(func(h *helloSpec) { h.exts = ext(0x002b, []byte{2, 3, 4}) }), "", nil},
		{"sni after others", ok.with(func(h *helloSpec) {
			h.exts = append(ext(0x002b, []byte{2, 3, 4}), sniExt("a.skype.com")...)
		}), "a.skype.com", nil},
		{"name as sent", ok.with(func(h *helloSpec) { h.exts = sniExt("Teams.Microsoft.COM.") }), "Teams.Microsoft.COM.", nil},
		{"sni in first record of split hello", splitHello(t, sniExt("skype.com"), ext(0x0015, make([]byte, 300))), "skype.com", nil},
		{"sni in second record of split hello", splitHello(t, ext(0x0015, make([]byte, 300)), sniExt("skype.com")), "", errSplit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseClientHelloSNI(tc.b[:len(tc.b):len(tc.b)])
			if got != tc.want || err != tc.err {
				t.Fatalf("ParseClientHelloSNI = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
	if !errors.Is(errSplit, ErrNotClientHello) {
		t.Error("errSplit does not match ErrNotClientHello")
	}
}

// TestParseClientHelloSNIDecisive checks that MaxClientHelloBytes bytes always
// decide, whatever the record claims.
func TestParseClientHelloSNIDecisive(t *testing.T) {
	hello := goClientHello(t, &tls.Config{ServerName: "teams.microsoft.com"})
	for _, recLen := range []int{1, 100, maxRecordPayload} {
		b := make([]byte, MaxClientHelloBytes)
		copy(b, hello[:recordHeaderLen+4])
		b[3], b[4] = byte(recLen>>8), byte(recLen)
		b[6], b[7], b[8] = 0xff, 0xff, 0xff // a huge handshake message
		if _, err := ParseClientHelloSNI(b); err == ErrIncomplete {
			t.Errorf("record length %d: %d bytes still incomplete", recLen, len(b))
		}
	}
}

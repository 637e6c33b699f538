package main

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestParseUDPReply(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		wantFrom string // "" for a name or an error
		wantHost string
		wantPort uint16
		wantData string
		wantErr  bool
	}{
		{"ipv4", []byte{0, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 'h', 'i'}, "127.0.0.1:8080", "", 8080, "hi", false},
		{"ipv6", append([]byte{0, 0, 0, 4}, append(netip.IPv6Loopback().AsSlice(), 0, 53, 'x')...), "[::1]:53", "", 53, "x", false},
		{"ipv4-mapped ipv6", append([]byte{0, 0, 0, 4}, append(netip.MustParseAddr("::ffff:127.0.0.2").AsSlice(), 0, 7)...), "127.0.0.2:7", "", 7, "", false},
		{"name", []byte{0, 0, 0, 3, 4, 'e', 'c', 'h', 'o', 0, 9, 'p'}, "", "echo", 9, "p", false},
		{"empty name", []byte{0, 0, 0, 3, 0, 0, 9}, "", "", 9, "", false},
		{"rsv ignored", []byte{9, 9, 0, 1, 1, 2, 3, 4, 0, 1}, "1.2.3.4:1", "", 1, "", false},
		{"short", []byte{0, 0, 0}, "", "", 0, "", true},
		{"short ipv4", []byte{0, 0, 0, 1, 127, 0, 0, 1, 0}, "", "", 0, "", true},
		{"short name", []byte{0, 0, 0, 3, 5, 'a'}, "", "", 0, "", true},
		{"no name length", []byte{0, 0, 0, 3}, "", "", 0, "", true},
		{"fragment", []byte{0, 0, 1, 1, 127, 0, 0, 1, 0, 1}, "", "", 0, "", true},
		{"unknown type", []byte{0, 0, 0, 2, 127, 0, 0, 1, 0, 1}, "", "", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseUDPReply(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			from := ""
			if r.from.IsValid() {
				from = r.from.String()
			}
			if from != tt.wantFrom || string(r.host) != tt.wantHost || r.port != tt.wantPort || string(r.payload) != tt.wantData {
				t.Errorf("got from %q host %q port %d payload %q", from, r.host, r.port, r.payload)
			}
		})
	}
}

func TestUDPHeaderRoundTrip(t *testing.T) {
	for _, dst := range []string{"127.0.0.1:3478", "[::1]:9", "[::ffff:10.0.0.1]:80"} {
		ap := netip.MustParseAddrPort(dst)
		r, err := parseUDPReply(append(appendUDPHeader(nil, ap), "data"...))
		want := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if err != nil || r.from != want || string(r.payload) != "data" {
			t.Errorf("%s: got %v %q %v, want %v", dst, r.from, r.payload, err, want)
		}
	}
}

// FuzzParseUDPReply checks that no input panics and that a parsed reply's
// payload is the tail of the input, after a header of a length its type allows.
func FuzzParseUDPReply(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 'h', 'i'})
	f.Add([]byte{0, 0, 0, 3, 4, 'e', 'c', 'h', 'o', 0, 9})
	f.Add(append([]byte{0, 0, 0, 4}, make([]byte, 18)...))
	f.Add([]byte{0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseUDPReply(b)
		if err != nil {
			return
		}
		head := len(b) - len(r.payload)
		if !bytes.Equal(b[head:], r.payload) {
			t.Fatalf("payload %x is not the tail of %x", r.payload, b)
		}
		var want int
		switch b[3] {
		case atypIPv4:
			want = 4 + 4 + 2
		case atypIPv6:
			want = 4 + 16 + 2
		case atypDomain:
			want = 4 + 1 + int(b[4]) + 2
			if !bytes.Equal(r.host, b[5:5+int(b[4])]) {
				t.Fatalf("host %q, want %q", r.host, b[5:5+int(b[4])])
			}
		default:
			t.Fatalf("address type %#x accepted", b[3])
		}
		if head != want || b[2] != 0 {
			t.Fatalf("header of %d bytes (type %#x, frag %d), want %d and frag 0", head, b[3], b[2], want)
		}
	})
}

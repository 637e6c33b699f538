package socks5

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseDatagram(t *testing.T) {
	v4 := []byte{0, 0, 0, atypIPv4, 192, 0, 2, 7, 0x0d, 0x96}
	v6 := append([]byte{0, 0, 0, atypIPv6}, netip.MustParseAddr("2001:db8::1").AsSlice()...)
	v6 = append(v6, 0x01, 0xbb)
	name := append([]byte{0, 0, 0, atypDomain, 9}, "skype.com"...)
	name = append(name, 0x0d, 0x96)
	tests := []struct {
		name    string
		in      []byte
		want    datagram
		wantErr error
	}{
		{"ipv4", cat(v4, []byte("hi")), datagram{addr: netip.MustParseAddr("192.0.2.7"), port: 3478, payload: []byte("hi")}, nil},
		{"ipv4 empty payload", v4, datagram{addr: netip.MustParseAddr("192.0.2.7"), port: 3478, payload: []byte{}}, nil},
		{"ipv6", cat(v6, []byte("x")), datagram{addr: netip.MustParseAddr("2001:db8::1"), port: 443, payload: []byte("x")}, nil},
		{"domain", cat(name, []byte("media")), datagram{host: []byte("skype.com"), port: 3478, payload: []byte("media")}, nil},
		{"rsv ignored", cat([]byte{0xff, 0xff}, v4[2:], []byte("z")), datagram{addr: netip.MustParseAddr("192.0.2.7"), port: 3478, payload: []byte("z")}, nil},
		{"frag kept", cat([]byte{0, 0, 1}, v4[3:]), datagram{frag: 1, addr: netip.MustParseAddr("192.0.2.7"), port: 3478, payload: []byte{}}, nil},
		{"empty", nil, datagram{}, errDatagramShort},
		{"header only", []byte{0, 0, 0}, datagram{}, errDatagramShort},
		{"ipv4 truncated address", v4[:6], datagram{}, errDatagramShort},
		{"ipv4 truncated port", v4[:9], datagram{}, errDatagramShort},
		{"ipv6 truncated", v6[:19], datagram{}, errDatagramShort},
		{"domain no length", name[:4], datagram{}, errDatagramShort},
		{"domain truncated name", name[:8], datagram{}, errDatagramShort},
		{"domain truncated port", name[:15], datagram{}, errDatagramShort},
		{"domain empty", []byte{0, 0, 0, atypDomain, 0, 0, 80}, datagram{}, errDatagramNoName},
		{"bad atyp", []byte{0, 0, 0, 2, 1, 2, 3, 4, 0, 80}, datagram{}, errDatagramAddrType},
		{"atyp zero", []byte{0, 0, 0, 0, 1, 2, 3, 4, 0, 80}, datagram{}, errDatagramAddrType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDatagram(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !sameDatagram(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// sameDatagram compares parsed datagrams; nil and empty payloads are the same.
func sameDatagram(a, b datagram) bool {
	return a.frag == b.frag && a.addr == b.addr && a.port == b.port &&
		bytes.Equal(a.host, b.host) && (a.host == nil) == (b.host == nil) &&
		bytes.Equal(a.payload, b.payload)
}

func TestReplyHeader(t *testing.T) {
	for _, tc := range []struct {
		peer string
		want []byte
	}{
		{"192.0.2.7:3478", []byte{0, 0, 0, atypIPv4, 192, 0, 2, 7, 0x0d, 0x96}},
		{"[::ffff:192.0.2.7]:3478", []byte{0, 0, 0, atypIPv4, 192, 0, 2, 7, 0x0d, 0x96}},
		{"[2001:db8::1]:443", cat([]byte{0, 0, 0, atypIPv6}, netip.MustParseAddr("2001:db8::1").AsSlice(), []byte{1, 0xbb})},
	} {
		peer := netip.MustParseAddrPort(tc.peer)
		got := appendReplyHeader(nil, peer)
		if !bytes.Equal(got, tc.want) || len(got) != replyHeaderLen(peer) {
			t.Errorf("%s: header %x (length %d), want %x", tc.peer, got, replyHeaderLen(peer), tc.want)
		}
		d, err := parseDatagram(append(got, "p"...))
		if err != nil || d.addr.Unmap() != peer.Addr().Unmap() || d.port != peer.Port() || string(d.payload) != "p" {
			t.Errorf("%s: parsed back as %+v, %v", tc.peer, d, err)
		}
	}
}

func TestParseDatagramDoesNotAllocate(t *testing.T) {
	msg := cat([]byte{0, 0, 0, atypDomain, 9}, []byte("skype.com"), []byte{0x0d, 0x96}, make([]byte, 1200))
	if n := testing.AllocsPerRun(100, func() { parseDatagram(msg) }); n != 0 {
		t.Errorf("parseDatagram allocates %v times per call", n)
	}
	var buf [maxReplyHeader]byte
	peer := netip.MustParseAddrPort("[2001:db8::1]:443")
	if n := testing.AllocsPerRun(100, func() { appendReplyHeader(buf[:0], peer) }); n != 0 {
		t.Errorf("appendReplyHeader allocates %v times per call", n)
	}
}

func FuzzParseDatagram(f *testing.F) {
	f.Add([]byte{0, 0, 0, atypIPv4, 127, 0, 0, 1, 0, 53, 'q'})
	f.Add(cat([]byte{0, 0, 0, atypIPv6}, netip.IPv6Loopback().AsSlice(), []byte{0, 53}))
	f.Add(cat([]byte{0, 0, 0, atypDomain, 9}, []byte("skype.com"), []byte{0x0d, 0x96, 'm'}))
	f.Add(cat([]byte{0, 0, 0, atypIPv6}, netip.MustParseAddr("::ffff:10.0.0.1").AsSlice(), []byte{0, 1}))
	f.Add([]byte{0, 0, 7, atypDomain, 0})
	f.Add([]byte(strings.Repeat("\xff", 300)))
	f.Fuzz(func(t *testing.T, in []byte) {
		d, err := parseDatagram(in)
		if err != nil {
			return
		}
		// A parse followed by a build gives back the input, RSV aside: nothing
		// is lost or invented between the wire and the relay.
		out := appendDatagram(nil, d)
		if !bytes.Equal(out[2:], in[2:]) {
			t.Fatalf("build(parse(%x)) = %x", in, out)
		}
		again, err := parseDatagram(out)
		if err != nil || !sameDatagram(again, d) {
			t.Fatalf("parse(build(%+v)) = %+v, %v", d, again, err)
		}
	})
}

func BenchmarkParseDatagram(b *testing.B) {
	msg := cat([]byte{0, 0, 0, atypIPv4, 192, 0, 2, 7, 0x0d, 0x96}, make([]byte, 1200))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := parseDatagram(msg); err != nil {
			b.Fatal(err)
		}
	}
}

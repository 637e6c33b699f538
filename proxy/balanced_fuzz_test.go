package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"

	"github.com/pires/go-proxyproto"
)

// FuzzReadValidProxyHeader builds a valid PROXY header (version 1 or 2, TCP over
// IPv4 or IPv6, version 2's LOCAL command and UDP, a TLV) from the fuzz input,
// followed by the client's first bytes, and checks that readProxyHeader returns
// exactly the source address it encodes (IPv4-mapped sources as IPv4), nothing
// for LOCAL, an error for UDP, and leaves the bytes after the header unread, as
// the front must see them.
func FuzzReadValidProxyHeader(f *testing.F) {
	f.Add(byte(1), false, []byte{10, 0, 0, 1}, uint16(4000), []byte{10, 0, 0, 2}, uint16(1080), byte(0), []byte(nil), []byte{5, 1, 0})
	f.Add(byte(2), true, ip16("2001:db8::1"), uint16(65535), ip16("2001:db8::2"), uint16(443), byte(0), []byte("tlv"), []byte("CONNECT x:443 HTTP/1.1\r\n"))
	f.Add(byte(2), false, []byte{192, 0, 2, 7}, uint16(0), []byte{192, 0, 2, 8}, uint16(1), byte(1), []byte(nil), []byte(nil))
	f.Add(byte(2), true, ip16("::ffff:198.51.100.4"), uint16(1), ip16("::1"), uint16(2), byte(2), []byte{}, []byte("PROXY TCP4 "))
	f.Add(byte(2), true, ip16("::ffff:203.0.113.9"), uint16(5060), ip16("::ffff:203.0.113.10"), uint16(1080), byte(0), []byte(nil), []byte{5})
	f.Add(byte(1), true, ip16("::1"), uint16(80), ip16("::2"), uint16(8080), byte(0), []byte(nil), []byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, version byte, v6 bool, srcIP []byte, srcPort uint16, dstIP []byte, dstPort uint16, kind byte, tlv, rest []byte) {
		version = 2 - version%2 // odd: 1, even: 2
		src, dst := fuzzAddr(srcIP, v6, version), fuzzAddr(dstIP, v6, version)
		kind %= 3 // 0: PROXY over TCP, 1: LOCAL, 2: PROXY over UDP; LOCAL and UDP exist in version 2 only
		srcAP, dstAP := netip.AddrPortFrom(src, srcPort), netip.AddrPortFrom(dst, dstPort)
		var h *proxyproto.Header
		if version == 2 && kind == 2 {
			h = proxyproto.HeaderProxyFromAddrs(version, net.UDPAddrFromAddrPort(srcAP), net.UDPAddrFromAddrPort(dstAP))
		} else {
			h = proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(srcAP), net.TCPAddrFromAddrPort(dstAP))
		}
		if version == 2 && kind == 1 {
			h.Command = proxyproto.LOCAL
		}
		if version == 2 && v6 {
			// HeaderProxyFromAddrs picks IPv4 for an IPv4-mapped address; a
			// balancer with a dual-stack socket sends it as IPv6.
			h.TransportProtocol = map[bool]proxyproto.AddressFamilyAndProtocol{false: proxyproto.TCPv6, true: proxyproto.UDPv6}[kind == 2]
		}
		if version == 2 && len(tlv) > 0 {
			// A type of the custom range (0xE0-0xEF), which the reader leaves alone.
			if err := h.SetTLVs([]proxyproto.TLV{{Type: proxyproto.PP2Type(0xe0 | tlv[0]&0x0f), Value: tlv[1:min(len(tlv), 512)]}}); err != nil {
				t.Fatal(err)
			}
		}
		header, err := h.Format()
		if err != nil {
			t.Fatalf("formatting %+v: %v", h, err)
		}
		br := bufio.NewReader(bytes.NewReader(append(header, rest...)))
		addr, err := readProxyHeader(br)
		switch {
		case version == 2 && kind == 2:
			if !errors.Is(err, errProxyNotStream) {
				t.Fatalf("UDP header %q: %v, %v; want errProxyNotStream", header, addr, err)
			}
			return
		case err != nil:
			t.Fatalf("valid header %q: %v", header, err)
		case version == 2 && kind == 1:
			if addr.IsValid() {
				t.Fatalf("LOCAL header %q gave address %v", header, addr)
			}
		default:
			if want := netip.AddrPortFrom(src.Unmap(), srcPort); addr != want {
				t.Fatalf("header %q: address %v, want %v", header, addr, want)
			}
		}
		if after, _ := io.ReadAll(br); !bytes.Equal(after, rest) {
			t.Fatalf("header %q: %q left after it, want %q", header, after, rest)
		}
	})
}

// fuzzAddr makes an address of the family chosen from fuzz bytes. Version 1's
// text form of an IPv4-mapped IPv6 address is IPv4 ("TCP6 1.2.3.4"), which no
// balancer writes, so version 1 gets a non-mapped IPv6 address instead.
func fuzzAddr(b []byte, v6 bool, version byte) netip.Addr {
	if !v6 {
		var a [4]byte
		copy(a[:], b)
		return netip.AddrFrom4(a)
	}
	var a [16]byte
	copy(a[:], b)
	ip := netip.AddrFrom16(a)
	if version == 1 && ip.Is4In6() {
		a[0] = 0x20
		ip = netip.AddrFrom16(a)
	}
	return ip
}

// ip16 is the 16 bytes of an IPv6 address, as a seed.
func ip16(s string) []byte {
	a := netip.MustParseAddr(s).As16()
	return a[:]
}

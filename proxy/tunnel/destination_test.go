package tunnel

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/sockshaper/sockshaper/configs"
)

// defaultDenied is the deny list of the default config, expanded.
func defaultDenied(t testing.TB) []netip.Prefix {
	t.Helper()
	cfg, err := configs.Default()
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Access.DeniedPrefixes
}

// TestDeniedAddrForms checks every way of writing an address against the default
// deny list: each denied IPv4 range directly, mapped, and embedded in the IPv6
// forms that gateways and tunnels turn back into IPv4, and public addresses in
// the same forms, which must pass.
func TestDeniedAddrForms(t *testing.T) {
	denied := defaultDenied(t)
	for _, tc := range []struct {
		addr, form string
		want       bool
	}{
		{"127.0.0.1", "IPv4 loopback", true},
		{"0.0.0.0", "IPv4 this-host", true},
		{"0.1.2.3", "0.0.0.0/8", true},
		{"::", "IPv6 unspecified", true},
		{"::1", "IPv6 loopback", true},
		{"10.1.2.3", "private", true},
		{"169.254.169.254", "metadata", true},
		{"224.0.0.1", "multicast all hosts", true},
		{"239.255.255.250", "multicast SSDP", true},
		{"ff02::1", "IPv6 multicast", true},
		{"ff05::1:3", "IPv6 site multicast", true},
		{"255.255.255.255", "limited broadcast", true},
		{"::ffff:127.0.0.1", "IPv4-mapped", true},
		{"::ffff:224.0.0.1", "IPv4-mapped multicast", true},
		{"::ffff:255.255.255.255", "IPv4-mapped broadcast", true},
		{"::127.0.0.1", "IPv4-compatible", true},
		{"::10.0.0.1", "IPv4-compatible private", true},
		{"::ffff:0:127.0.0.1", "SIIT", true},
		{"::ffff:0:a9fe:a9fe", "SIIT metadata", true},
		{"64:ff9b::127.0.0.1", "NAT64 well-known", true},
		{"64:ff9b::a9fe:a9fe", "NAT64 well-known metadata", true},
		{"64:ff9b::e000:1", "NAT64 well-known multicast", true},
		{"64:ff9b::ffff:ffff", "NAT64 well-known broadcast", true},
		{"64:ff9b:1:7f00:0:100::", "NAT64 local /48", true},
		{"64:ff9b:1:7f:0:1::", "NAT64 local /56", true},
		{"64:ff9b:1:0:7f:0:100:0", "NAT64 local /64", true},
		{"64:ff9b:1::7f00:1", "NAT64 local /96", true},
		{"64:ff9b:1:a9fe:a9:fe00::", "NAT64 local /48 metadata", true},
		{"2002:7f00:1::", "6to4 loopback", true},
		{"2002:c0a8:101::1", "6to4 private", true},
		{"2002:e000:1::", "6to4 multicast", true},
		{"2001:0:7f00:1::", "Teredo server loopback", true},
		{"2001:0:808:808:0:ffff:80ff:fffe", "Teredo client loopback", true},
		{"2001:0:808:808:0:ffff:1fff:fffe", "Teredo client multicast", true},

		{"8.8.8.8", "public IPv4", false},
		{"2001:4860:4860::8888", "public IPv6", false},
		{"::ffff:8.8.8.8", "mapped public", false},
		{"::8.8.8.8", "compatible public", false},
		{"::ffff:0:8.8.8.8", "SIIT public", false},
		{"64:ff9b::808:808", "NAT64 well-known public", false},
		{"64:ff9b:1:808:8:800::", "NAT64 local /48 public", false},
		{"64:ff9b:1:8:8:808::", "NAT64 local /56 public", false},
		{"64:ff9b:1:0:8:808:800:0", "NAT64 local /64 public", false},
		{"64:ff9b:1::808:808", "NAT64 local /96 public", false},
		{"2002:808:808::1", "6to4 public", false},
		{"2001:0:808:808:0:ffff:f7f7:fbfb", "Teredo public", false},
		{"2001:db8::1", "documentation, not in the default list", false},
	} {
		if got := deniedAddr(denied, netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("deniedAddr(%s) (%s) = %v, want %v", tc.addr, tc.form, got, tc.want)
		}
	}
}

// TestDeniedAddrCustomRange checks that a CIDR an operator adds reaches the
// embedded forms too, not only the named sets.
func TestDeniedAddrCustomRange(t *testing.T) {
	denied := []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	for _, a := range []string{"198.51.100.7", "::ffff:198.51.100.7", "64:ff9b::c633:6407", "2002:c633:6407::1", "::198.51.100.7"} {
		if !deniedAddr(denied, netip.MustParseAddr(a)) {
			t.Errorf("deniedAddr(%s) = false with 198.51.100.0/24 denied", a)
		}
	}
	if deniedAddr(denied, netip.MustParseAddr("64:ff9b::c633:6507")) {
		t.Errorf("deniedAddr(64:ff9b::198.51.101.7) = true")
	}
}

func TestDeniedAddrAllocatesNothing(t *testing.T) {
	denied := defaultDenied(t)
	a := netip.MustParseAddr("64:ff9b:1::808:808")
	if n := testing.AllocsPerRun(100, func() { deniedAddr(denied, a) }); n != 0 {
		t.Errorf("deniedAddr allocates %v times per call", n)
	}
}

// embedIPv4 writes v4 into an IPv6 address in one of the forms embeddedIPv4
// knows, the other bytes taken from filler, as a gateway's prefix would be.
func embedIPv4(form int, v4 [4]byte, filler [16]byte) netip.Addr {
	b := filler
	set := func(pos [4]int, x [4]byte) {
		for i, p := range pos {
			b[p] = x[i]
		}
	}
	prefix := func(p ...byte) { copy(b[:], p) }
	switch form {
	case 0: // NAT64 well-known, /96
		prefix(0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0)
		set([4]int{12, 13, 14, 15}, v4)
	case 1, 2, 3, 4: // NAT64 local-use at /48, /56, /64, /96
		prefix(0, 0x64, 0xff, 0x9b, 0, 1)
		b[8] = 0
		set([][4]int{{6, 7, 9, 10}, {7, 9, 10, 11}, {9, 10, 11, 12}, {12, 13, 14, 15}}[form-1], v4)
	case 5: // 6to4
		prefix(0x20, 0x02)
		set([4]int{2, 3, 4, 5}, v4)
	case 6: // Teredo server
		prefix(0x20, 0x01, 0, 0)
		set([4]int{4, 5, 6, 7}, v4)
	case 7: // Teredo client, inverted
		prefix(0x20, 0x01, 0, 0)
		set([4]int{12, 13, 14, 15}, [4]byte{^v4[0], ^v4[1], ^v4[2], ^v4[3]})
	case 8: // SIIT
		prefix(0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0)
		set([4]int{12, 13, 14, 15}, v4)
	default: // IPv4-compatible
		prefix(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
		set([4]int{12, 13, 14, 15}, v4)
	}
	return netip.AddrFrom16(b)
}

// FuzzEmbeddedIPv4 checks the extraction on any 16 bytes (it never finds an
// address outside the known forms, never one in 0.0.0.0/8, never more than
// maxEmbedded) and, for an IPv4 address written into any form with any
// surrounding bytes, that it finds it and that denying it denies the IPv6 form.
func FuzzEmbeddedIPv4(f *testing.F) {
	f.Add([]byte(net.ParseIP("64:ff9b::7f00:1")), uint8(0), uint32(0x7f000001))
	f.Add([]byte(net.ParseIP("2001:0:808:808::f7f7:f7f7")), uint8(7), uint32(0xa9fea9fe))
	f.Add([]byte(net.ParseIP("64:ff9b:1:ffff:ffff:ffff:ffff:ffff")), uint8(2), uint32(0xe0000001))
	f.Add([]byte{}, uint8(9), uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, raw []byte, form uint8, v4n uint32) {
		var filler [16]byte
		copy(filler[:], raw)
		any16 := netip.AddrFrom16(filler)
		out, n := embeddedIPv4(any16)
		known := []netip.Prefix{nat64WellKnown, nat64Local, sixToFour, teredo, compatible, siit}
		if n > 0 && !slices.ContainsFunc(known, func(p netip.Prefix) bool { return p.Contains(any16) }) {
			t.Fatalf("embeddedIPv4(%v) found %v outside the known forms", any16, out[:n])
		}
		for i, e := range out {
			if i < n && (!e.Is4() || e.As4()[0] == 0) || i >= n && e.IsValid() {
				t.Fatalf("embeddedIPv4(%v) = %v, %d", any16, out, n)
			}
		}

		var v4 [4]byte
		binary.BigEndian.PutUint32(v4[:], v4n)
		if v4[0] == 0 {
			return // 0.0.0.0/8 is never returned
		}
		a := embedIPv4(int(form%10), v4, filler)
		out, n = embeddedIPv4(a)
		if !slices.Contains(out[:n], netip.AddrFrom4(v4)) {
			t.Fatalf("form %d: embeddedIPv4(%v) = %v, lacks %v", form%10, a, out[:n], netip.AddrFrom4(v4))
		}
		if !deniedAddr([]netip.Prefix{netip.PrefixFrom(netip.AddrFrom4(v4), 32)}, a) {
			t.Fatalf("form %d: %v not denied with %v denied", form%10, a, netip.AddrFrom4(v4))
		}
	})
}

func TestOwnAddrs(t *testing.T) {
	var o ownAddrs
	if o.contains(netip.MustParseAddrPort("127.0.0.1:1080")) {
		t.Fatal("an empty set contains an address")
	}
	o.add(netip.MustParseAddrPort("127.0.0.1:1080"))
	o.add(netip.MustParseAddrPort("[::]:9180"))
	o.add(netip.MustParseAddrPort("127.0.0.1:1080")) // twice: no duplicate
	if got := len(*o.set.Load()); got != 2 {
		t.Errorf("%d addresses recorded, want 2", got)
	}
	cases := map[string]bool{
		"127.0.0.1:1080":            true,
		"[::ffff:127.0.0.1]:1080":   true,
		"0.0.0.0:1080":              true, // the kernel sends it to the local host
		"[::]:1080":                 true,
		"[64:ff9b::7f00:1]:1080":    true,
		"[::ffff:0:7f00:1]:1080":    true,
		"127.0.0.1:1081":            false,
		"127.0.0.2:1080":            false, // another loopback address, not the listener's
		"[::1]:1080":                false,
		"127.0.0.1:9180":            true, // wildcard: every local address
		"127.9.9.9:9180":            true,
		"[::1]:9180":                true,
		"[2002:7f00:1::]:9180":      true,
		"8.8.8.8:9180":              false,
		"[2001:4860::8888]:9180":    false,
		"[64:ff9b::808:808]:9180":   false,
		"127.0.0.1:0":               false,
		"[2001:db8::1]:1080":        false,
		"[64:ff9b:1::808:808]:1080": false,
	}
	for _, ia := range interfaceAddrs(t) {
		cases[netip.AddrPortFrom(ia, 9180).String()] = true
	}
	for dst, want := range cases {
		if got := o.contains(netip.MustParseAddrPort(dst)); got != want {
			t.Errorf("contains(%s) = %v, want %v", dst, got, want)
		}
	}
}

// interfaceAddrs returns the host's addresses that are neither loopback nor
// link-local, which only a wildcard listener's check can find.
func interfaceAddrs(t *testing.T) []netip.Addr {
	t.Helper()
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Addr
	for _, ia := range ifAddrs {
		if p, ok := ia.(*net.IPNet); ok {
			a, _ := netip.AddrFromSlice(p.IP)
			if a = a.Unmap(); !a.IsLoopback() && !a.IsLinkLocalUnicast() {
				out = append(out, a)
			}
		}
	}
	return out
}

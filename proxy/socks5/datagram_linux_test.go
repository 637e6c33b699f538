//go:build linux

package socks5

import (
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestSockaddrAddrPort(t *testing.T) {
	var rsa unix.RawSockaddrAny
	sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
	sa4.Family = unix.AF_INET
	sa4.Addr = [4]byte{192, 0, 2, 7}
	*(*[2]byte)(unsafe.Pointer(&sa4.Port)) = [2]byte{0x0d, 0x96} // 3478
	if got, want := sockaddrAddrPort(&rsa), netip.MustParseAddrPort("192.0.2.7:3478"); got != want {
		t.Errorf("IPv4: %v, want %v", got, want)
	}
	for s, want := range map[string]string{"2001:db8::7": "[2001:db8::7]:3478", "::ffff:192.0.2.7": "192.0.2.7:3478"} {
		rsa = unix.RawSockaddrAny{}
		sa6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		sa6.Family = unix.AF_INET6
		sa6.Addr = netip.MustParseAddr(s).As16()
		*(*[2]byte)(unsafe.Pointer(&sa6.Port)) = [2]byte{0x0d, 0x96}
		if got := sockaddrAddrPort(&rsa); got != netip.MustParseAddrPort(want) {
			t.Errorf("IPv6 %s: %v, want %s", s, got, want)
		}
	}
	rsa = unix.RawSockaddrAny{}
	if got := sockaddrAddrPort(&rsa); got.IsValid() {
		t.Errorf("unknown family: %v, want the zero AddrPort", got)
	}
}

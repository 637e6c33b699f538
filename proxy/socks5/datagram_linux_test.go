//go:build linux

package socks5

import (
	"net/netip"
	"syscall"
	"testing"
	"unsafe"
)

func TestSockaddrAddrPort(t *testing.T) {
	var rsa syscall.RawSockaddrAny
	sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&rsa))
	sa4.Family = syscall.AF_INET
	sa4.Addr = [4]byte{192, 0, 2, 7}
	*(*[2]byte)(unsafe.Pointer(&sa4.Port)) = [2]byte{0x0d, 0x96} // 3478
	if got, want := sockaddrAddrPort(&rsa), netip.MustParseAddrPort("192.0.2.7:3478"); got != want {
		t.Errorf("IPv4: %v, want %v", got, want)
	}
	for s, want := range map[string]string{"2001:db8::7": "[2001:db8::7]:3478", "::ffff:192.0.2.7": "192.0.2.7:3478"} {
		rsa = syscall.RawSockaddrAny{}
		sa6 := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		sa6.Family = syscall.AF_INET6
		sa6.Addr = netip.MustParseAddr(s).As16()
		*(*[2]byte)(unsafe.Pointer(&sa6.Port)) = [2]byte{0x0d, 0x96}
		if got := sockaddrAddrPort(&rsa); got != netip.MustParseAddrPort(want) {
			t.Errorf("IPv6 %s: %v, want %s", s, got, want)
		}
	}
	rsa = syscall.RawSockaddrAny{}
	if got := sockaddrAddrPort(&rsa); got.IsValid() {
		t.Errorf("unknown family: %v, want the zero AddrPort", got)
	}
}

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// socks5LoggedIn dials the proxy from the client address's family and logs in
// as alice.
func socks5LoggedIn(t *testing.T, proxyAddr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := append([]byte{5, 1, 2, 1, 5}, "alice"...)
	msg = append(append(msg, byte(len(password))), password...)
	c.Write(msg)
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, []byte{5, 2, 1, 0}) {
		t.Fatalf("login: %x, %v", got, err)
	}
	return c.(*net.TCPConn)
}

// socks5Request sends a CONNECT (cmd 1) or UDP ASSOCIATE (cmd 3) for dst and
// returns the address of the reply, failing the test unless it succeeded.
func socks5Request(t *testing.T, c net.Conn, cmd byte, dst netip.AddrPort) netip.AddrPort {
	t.Helper()
	a := dst.Addr().As4()
	c.Write(append(append([]byte{5, cmd, 0, 1}, a[:]...), byte(dst.Port()>>8), byte(dst.Port())))
	head := make([]byte, 4)
	if _, err := io.ReadFull(c, head); err != nil || head[1] != 0 {
		t.Fatalf("request %d to %v: reply %x, %v", cmd, dst, head, err)
	}
	n := map[byte]int{1: 4, 4: 16}[head[3]]
	if n == 0 {
		t.Fatalf("reply with address type %d", head[3])
	}
	rest := make([]byte, n+2)
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	addr, _ := netip.AddrFromSlice(rest[:n])
	return netip.AddrPortFrom(addr.Unmap(), uint16(rest[n])<<8|uint16(rest[n+1]))
}

// tosReceiver is a client UDP socket that reports the DSCP byte each datagram
// arrives with (IP_RECVTOS, IPV6_RECVTCLASS).
func tosReceiver(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc, _ := c.SyscallConn()
	rc.Control(func(fd uintptr) {
		if strings.Contains(ip, ":") {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVTCLASS, 1)
		} else {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVTOS, 1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// receiveTOS reads one datagram and returns its payload and DSCP byte.
func receiveTOS(t *testing.T, c *net.UDPConn) (string, byte) {
	t.Helper()
	buf, oob := make([]byte, 2048), make([]byte, 128)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := c.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatalf("no datagram back to the client: %v", err)
	}
	msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		if (m.Header.Type == syscall.IP_TOS && m.Header.Level == syscall.IPPROTO_IP ||
			m.Header.Type == syscall.IPV6_TCLASS && m.Header.Level == syscall.IPPROTO_IPV6) && len(m.Data) > 0 {
			return string(buf[:n]), m.Data[0] // IP_TOS is a byte, IPV6_TCLASS a little-endian int
		}
	}
	t.Fatal("no TOS or traffic class with the datagram")
	return "", 0
}

// TestDSCPTowardTheClient reads the marks toward the client on the wire, over
// IPv4 and IPv6: with dscp_to_client the client's TCP connection (from the
// CONNECT reply on) and the relay's datagrams to the client carry the class's
// DSCP; a class without it, and unclassified traffic, reach the client
// unmarked.
func TestDSCPTowardTheClient(t *testing.T) {
	for _, fam := range []struct{ name, listen, client string }{
		{"IPv4", "127.0.0.1:0", "127.0.0.1"},
		{"IPv6", "[::1]:0", "::1"},
	} {
		t.Run(fam.name, func(t *testing.T) {
			if ln, err := net.Listen("tcp", fam.listen); err != nil {
				skipOutsideCI(t, "no %s loopback: %v", fam.name, err)
			} else {
				ln.Close()
			}
			tcpCalls, tcpBulk := echoServer(t), echoServer(t)
			// UDP peers of the client's family: a relay socket bound to ::1
			// reaches IPv6 peers only.
			udpCalls, udpOther := udpEchoOn(t, fam.client), udpEchoOn(t, fam.client)
			config := strings.Replace(baseConfig, "listen: 127.0.0.1:0", fmt.Sprintf("listen: %q", fam.listen), 1)
			config = strings.Replace(config, "client_networks: [127.0.0.0/8]", `client_networks: [127.0.0.0/8, "::1/128"]`, 1)
			config += fmt.Sprintf(`
apps:
  calls: {any_address_ports: ["tcp/%d", "udp/%d"], dscp: EF, dscp_to_client: true}
  bulk: {any_address_ports: ["tcp/%d"], dscp: AF41}
`, netip.MustParseAddrPort(tcpCalls).Port(), udpCalls.Port(), netip.MustParseAddrPort(tcpBulk).Port())
			d := startDaemon(t, config, usersFile())
			checkTCPMarksToClient(t, d.listen, tcpCalls, 0xb8, "calls (EF, dscp_to_client)")
			checkTCPMarksToClient(t, d.listen, tcpBulk, 0, "bulk (AF41 toward destinations only)")
			checkUDPMarksToClient(t, d.listen, fam.client, udpCalls, udpOther)
		})
	}
}

// checkTCPMarksToClient opens a CONNECT session to the echo server target and
// checks the DSCP of every segment with payload from the proxy to the client,
// from the CONNECT reply on.
func checkTCPMarksToClient(t *testing.T, proxyAddr, target string, want byte, what string) {
	t.Helper()
	c := socks5LoggedIn(t, proxyAddr)
	capture := startWireCapture(t, netip.MustParseAddrPort(proxyAddr).Port(), uint16(c.LocalAddr().(*net.TCPAddr).Port))
	socks5Request(t, c, 1, netip.MustParseAddrPort(target))
	for i := range 3 {
		roundTrip(t, c, fmt.Sprint("media ", i))
	}
	got := capture.marks(4) // the reply and three echoes
	if len(got) < 4 {
		t.Fatalf("%s: %d segments to the client captured, want at least 4", what, len(got))
	}
	for i, tos := range got {
		if tos&^3 != want { // the low two bits are ECN
			t.Errorf("%s: segment %d to the client has DSCP byte %#x, want %#x (all %x)", what, i, tos, want, got)
			break
		}
	}
}

// checkUDPMarksToClient associates from a client socket on clientIP and checks
// the mark of the replies the relay sends it: EF from the calls peer, none from
// an unclassified one.
func checkUDPMarksToClient(t *testing.T, proxyAddr, clientIP string, calls, other netip.AddrPort) {
	t.Helper()
	ctl := socks5LoggedIn(t, proxyAddr)
	relay := socks5Request(t, ctl, 3, netip.AddrPortFrom(netip.IPv4Unspecified(), 0))
	client := tosReceiver(t, clientIP)
	for _, tc := range []struct {
		name string
		peer netip.AddrPort
		want byte
	}{
		{"datagram from the calls peer", calls, 0xb8},
		{"datagram from an unclassified peer", other, 0},
		{"second datagram from the calls peer", calls, 0xb8},
	} {
		payload := "media to " + tc.name
		if _, err := client.WriteToUDPAddrPort(append(udpHeader(tc.peer), payload...), relay); err != nil {
			t.Fatal(err)
		}
		got, tos := receiveTOS(t, client)
		if !strings.HasSuffix(got, payload) {
			t.Fatalf("%s: client got %q", tc.name, got)
		}
		if tos&^3 != tc.want {
			t.Errorf("%s: reached the client with DSCP byte %#x, want %#x", tc.name, tos, tc.want)
		}
	}
}

// udpHeader is the RFC 1928 UDP request header for dst, IPv4 or IPv6.
func udpHeader(dst netip.AddrPort) []byte {
	if dst.Addr().Is4() {
		return udpRequestHeader(dst)
	}
	a := dst.Addr().As16()
	return append(append([]byte{0, 0, 0, 4}, a[:]...), byte(dst.Port()>>8), byte(dst.Port()))
}

// udpEchoOn answers every datagram to a socket on ip with its payload.
func udpEchoOn(t *testing.T, ip string) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(ip), 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

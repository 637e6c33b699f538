//go:build linux

package dscp

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

const ef = 46 // TOS byte 0xb8

// skipOrFail skips a test that a machine without IPv6 (or without the address)
// cannot run, except in CI (CI set), where every case must run: there it fails.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// receiver is a UDP socket that reports the TOS byte (IPv4) or traffic class
// (IPv6) of each datagram it receives: IP_RECVTOS and IPV6_RECVTCLASS.
func receiver(t *testing.T, network, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenPacket(network, addr)
	if err != nil {
		skipOrFail(t, "%s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	u := c.(*net.UDPConn)
	rc, _ := u.SyscallConn()
	rc.Control(func(fd uintptr) {
		if network == "udp4" {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVTOS, 1)
		} else {
			err = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVTCLASS, 1)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// receivedTOS reads one datagram and returns its TOS byte or traffic class.
func receivedTOS(t *testing.T, c *net.UDPConn) int {
	t.Helper()
	buf, oob := make([]byte, 1500), make([]byte, 128)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, oobn, _, _, err := c.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == syscall.IPPROTO_IP && m.Header.Type == syscall.IP_TOS && len(m.Data) >= 1:
			return int(m.Data[0])
		case m.Header.Level == syscall.IPPROTO_IPV6 && m.Header.Type == syscall.IPV6_TCLASS && len(m.Data) >= 4:
			return int(int32(m.Data[0]) | int32(m.Data[1])<<8 | int32(m.Data[2])<<16 | int32(m.Data[3])<<24)
		}
	}
	t.Fatal("no TOS or traffic class in the control messages")
	return -1
}

// TestWriteToMarksEachDatagram sends marked and unmarked datagrams alternately
// from one socket, of each family and from a dual-stack socket to both, and
// reads each one's mark at the receiver.
func TestWriteToMarksEachDatagram(t *testing.T) {
	mark := New(ef)
	for _, tc := range []struct {
		name, senderNet, senderAddr, recvNet, recvAddr string
	}{
		{"IPv4", "udp4", "127.0.0.1:0", "udp4", "127.0.0.1:0"},
		{"IPv6", "udp6", "[::1]:0", "udp6", "[::1]:0"},
		{"dual-stack to IPv4", "udp", "[::]:0", "udp4", "127.0.0.1:0"},
		{"dual-stack to IPv6", "udp", "[::]:0", "udp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recv := receiver(t, tc.recvNet, tc.recvAddr)
			pc, err := net.ListenPacket(tc.senderNet, tc.senderAddr)
			if err != nil {
				skipOrFail(t, "%s %s: %v", tc.senderNet, tc.senderAddr, err)
			}
			defer pc.Close()
			send := pc.(*net.UDPConn)
			dst := recv.LocalAddr().(*net.UDPAddr).AddrPort()
			for i, m := range []Mark{mark, {}, mark, New(10)} {
				if _, err := m.WriteTo(send, []byte("datagram"), dst); err != nil {
					t.Fatal(err)
				}
				if got, want := receivedTOS(t, recv), m.DSCP().TOS(); got != want {
					t.Errorf("datagram %d: TOS %#x at the receiver, want %#x", i, got, want)
				}
			}
		})
	}
}

// TestWriteToAllocs checks that marking a datagram costs no allocation, so
// that the UDP relay stays allocation-free per datagram.
func TestWriteToAllocs(t *testing.T) {
	recv := receiver(t, "udp4", "127.0.0.1:0")
	pc, err := net.ListenPacket("udp", "[::]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	send, dst, m := pc.(*net.UDPConn), recv.LocalAddr().(*net.UDPAddr).AddrPort(), New(ef)
	payload := make([]byte, 200)
	go func() { // keep the receive queue from filling
		buf := make([]byte, 1500)
		for {
			if _, err := recv.Read(buf); err != nil {
				return
			}
		}
	}()
	if n := testing.AllocsPerRun(1000, func() { m.WriteTo(send, payload, dst) }); n != 0 {
		t.Errorf("WriteTo allocates %v times per datagram", n)
	}
}

// sockTOS reads a TCP socket's IP_TOS and, for IPv6, IPV6_TCLASS.
func sockTOS(t *testing.T, c *net.TCPConn, v6 bool) (tos, tclass int) {
	t.Helper()
	rc, _ := c.SyscallConn()
	var err error
	rc.Control(func(fd uintptr) {
		tos, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_TOS)
		if err == nil && v6 {
			tclass, err = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_TCLASS)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return tos, tclass
}

// TestTCPMarks marks a dialled socket through the dialer's Control and an
// accepted one through Set, and reads the marks back from the sockets; on IPv4
// it also captures the packets with a raw socket to see the mark on the wire.
func TestTCPMarks(t *testing.T) {
	for _, tc := range []struct {
		name, network, addr string
		v6                  bool
	}{
		{"IPv4", "tcp4", "127.0.0.1:0", false},
		{"IPv6", "tcp6", "[::1]:0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.addr)
			if err != nil {
				skipOrFail(t, "%s %s: %v", tc.network, tc.addr, err)
			}
			defer ln.Close()
			var capture *rawCapture
			if !tc.v6 {
				capture = startCapture(t)
			}
			dialer := net.Dialer{Control: New(ef).Control}
			c, err := dialer.Dial(tc.network, ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := New(10).Set(s.(*net.TCPConn)); err != nil {
				t.Fatal(err)
			}
			c.Write([]byte("to the server"))
			s.Write([]byte("to the client"))
			if tos, tclass := sockTOS(t, c.(*net.TCPConn), tc.v6); tos != 0xb8 || tc.v6 && tclass != 0xb8 {
				t.Errorf("dialled socket: IP_TOS %#x, IPV6_TCLASS %#x; want 0xb8", tos, tclass)
			}
			if tos, tclass := sockTOS(t, s.(*net.TCPConn), tc.v6); tos != 0x28 || tc.v6 && tclass != 0x28 {
				t.Errorf("accepted socket: IP_TOS %#x, IPV6_TCLASS %#x; want 0x28", tos, tclass)
			}
			if capture != nil {
				server := ln.Addr().(*net.TCPAddr).AddrPort().Port()
				client := c.LocalAddr().(*net.TCPAddr).AddrPort().Port()
				capture.expect(t, client, server, false, 0xb8, "the client's SYN")
				capture.expect(t, client, server, true, 0xb8, "the client's data")
				capture.expect(t, server, client, true, 0x28, "the server's data after Set")
			}
		})
	}
}

func TestZeroMarkLeavesSocketsAlone(t *testing.T) {
	var m Mark
	if !m.IsZero() || !New(0).IsZero() || New(1).IsZero() {
		t.Error("IsZero")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := m.Set(c.(*net.TCPConn)); err != nil {
		t.Fatal(err)
	}
	if tos, _ := sockTOS(t, c.(*net.TCPConn), false); tos != 0 {
		t.Errorf("zero Mark set TOS %#x", tos)
	}
}

// rawCapture is a raw IPv4 socket that sees every TCP packet the host receives,
// with its IP header.
type rawCapture struct{ fd int }

func startCapture(t *testing.T) *rawCapture {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW, syscall.IPPROTO_TCP)
	if errors.Is(err, syscall.EPERM) && os.Getenv("CI") == "" {
		t.Log("no raw socket (needs CAP_NET_RAW): the wire capture is skipped")
		return nil
	}
	if err != nil {
		t.Fatalf("raw socket: %v", err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	tv := syscall.Timeval{Sec: 1}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	return &rawCapture{fd: fd}
}

// expect reads captured packets until one from port src to port dst arrives
// (one with payload when data is set) and checks its TOS byte.
func (r *rawCapture) expect(t *testing.T, src, dst uint16, data bool, tos byte, what string) {
	t.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		n, _, err := syscall.Recvfrom(r.fd, buf, 0)
		if err != nil || n < 20 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+20 || netip.AddrFrom4([4]byte(buf[16:20])) != netip.MustParseAddr("127.0.0.1") {
			continue
		}
		if payload := n - ihl - int(buf[ihl+12]>>4)*4; data && payload <= 0 {
			continue
		}
		sport, dport := uint16(buf[ihl])<<8|uint16(buf[ihl+1]), uint16(buf[ihl+2])<<8|uint16(buf[ihl+3])
		if sport == src && dport == dst {
			if buf[1] != tos {
				t.Errorf("%s: TOS %#x on the wire, want %#x", what, buf[1], tos)
			}
			return
		}
	}
	t.Errorf("%s: no packet from port %d to %d captured", what, src, dst)
}

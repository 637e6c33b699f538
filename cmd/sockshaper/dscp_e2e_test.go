package main

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"
)

// tosEcho answers every datagram on 127.0.0.1 with its payload and records the
// TOS byte each one arrived with (IP_RECVTOS).
type tosEcho struct {
	conn *net.UDPConn
	tos  chan byte
}

func startTOSEcho(t *testing.T) *tosEcho {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rc, _ := conn.SyscallConn()
	rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVTOS, 1) })
	e := &tosEcho{conn: conn, tos: make(chan byte, 16)}
	go func() {
		buf, oob := make([]byte, 2048), make([]byte, 128)
		for {
			n, oobn, _, from, err := conn.ReadMsgUDPAddrPort(buf, oob)
			if err != nil {
				return
			}
			msgs, _ := syscall.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				if m.Header.Level == syscall.IPPROTO_IP && m.Header.Type == syscall.IP_TOS && len(m.Data) > 0 {
					e.tos <- m.Data[0]
				}
			}
			conn.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return e
}

// TestDSCPMarksCallDatagrams: a call's datagrams through UDP ASSOCIATE leave the
// proxy marked with their class's DSCP (EF, 46: TOS 0xb8), and datagrams of an
// unmarked class leave unmarked.
func TestDSCPMarksCallDatagrams(t *testing.T) {
	calls, other := startTOSEcho(t), startTOSEcho(t)
	callPort := calls.conn.LocalAddr().(*net.UDPAddr).Port
	d := startDaemon(t, baseConfig+fmt.Sprintf(`
apps:
  calls: {any_address_ports: ["udp/%d"], dscp: EF}
`, callPort), usersFile())
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	relay, _ := udpAssociateRaw(t, d.listen)
	for _, tc := range []struct {
		name string
		echo *tosEcho
		want byte
	}{
		{"calls class (EF)", calls, 46 << 2},
		{"unclassified", other, 0},
	} {
		dst := tc.echo.conn.LocalAddr().(*net.UDPAddr).AddrPort()
		client.WriteToUDPAddrPort(append(udpRequestHeader(dst), "media"...), relay)
		select {
		case tos := <-tc.echo.tos:
			if tos&^3 != tc.want { // the low two bits are ECN
				t.Errorf("%s: datagram arrived with TOS %#x, want %#x", tc.name, tos, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no datagram reached the peer", tc.name)
		}
	}
}

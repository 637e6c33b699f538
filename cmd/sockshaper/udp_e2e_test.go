package main

import (
	"bytes"

	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// udpClientScript sends one datagram from an unconnected socket (sendto and
// recvfrom) and one from a connected socket to the echo server on 127.0.0.1 at
// the port given as its argument, and prints what comes back.
const udpClientScript = `
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(b"hello via sendto", ("127.0.0.1", port))
data, peer = s.recvfrom(2048)
print(data.decode(), peer[0], peer[1] == port)
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(5)
c.connect(("127.0.0.1", port))
c.send(b"hello via connect")
print(c.recv(2048).decode())
`

// udpEchoServer answers every datagram on 127.0.0.1 with "echo: " and the
// payload, and returns its address.
func udpEchoServer(t *testing.T) netip.AddrPort {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			conn.WriteToUDPAddrPort(append([]byte("echo: "), buf[:n]...), from)
		}
	})
	t.Cleanup(func() { conn.Close(); wg.Wait() })
	return conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestSocksifyUDP runs a real SOCKS client: dante's socksify wraps Python's
// socket calls and sends them through the daemon's UDP ASSOCIATE.
func TestSocksifyUDP(t *testing.T) {
	socksify := requireTool(t, "socksify", "dante-client")
	python := requireTool(t, "python3", "python3")
	d := startDaemon(t, baseConfig, usersFile())
	echo := udpEchoServer(t)
	proxy := netip.MustParseAddrPort(d.listen)
	conf := filepath.Join(t.TempDir(), "socks.conf")
	writeFile(t, conf, fmt.Sprintf(`route {
	from: 0.0.0.0/0 to: 0.0.0.0/0 via: %s port = %d
	protocol: udp tcp
	proxyprotocol: socks_v5
	method: username
}
`, proxy.Addr(), proxy.Port()))
	cmd := exec.Command(socksify, python, "-c", udpClientScript, fmt.Sprint(echo.Port()))
	// Without SOCKS_AUTOADD_LANROUTES=no, dante sends to addresses of local
	// networks (loopback included) directly, bypassing the proxy.
	cmd.Env = append(os.Environ(), "SOCKS_CONF="+conf, "SOCKS_USERNAME=alice",
		"SOCKS_PASSWORD="+password, "SOCKS_AUTOADD_LANROUTES=no")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("socksify python3: %v\n%s", err, out.String())
	}
	want := "echo: hello via sendto 127.0.0.1 True\necho: hello via connect\n"
	if out.String() != want {
		t.Fatalf("client printed %q, want %q", out.String(), want)
	}
	// The exact upload count proves both datagrams went through the proxy, not
	// around it.
	d.waitMetric(`sockshaper_transferred_bytes_total{app="other",direction="upload",transport="udp"}`, 33)
	d.waitMetric(`sockshaper_transferred_bytes_total{app="other",direction="download",transport="udp"}`, 45)
	if v := d.metric(`sockshaper_sessions_total{app="other",command="udp_associate",front="socks5",result="ok"}`); v < 1 {
		t.Errorf("udp_associate sessions = %v, want at least 1", v)
	}
}

// TestUDPStrangerRefusedByDaemon is the supernode check through the binary: a
// socket the client never sent to cannot reach the client through its relay.
func TestUDPStrangerRefusedByDaemon(t *testing.T) {
	d := startDaemon(t, baseConfig, usersFile())
	echo := udpEchoServer(t)
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	relay, _ := udpAssociateRaw(t, d.listen)
	client.WriteToUDPAddrPort(append(udpRequestHeader(echo), "ping"...), relay)
	buf := make([]byte, 2048)
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := client.ReadFromUDPAddrPort(buf)
	if err != nil || !bytes.HasSuffix(buf[:n], []byte("echo: ping")) {
		t.Fatalf("relayed echo: %q, %v", buf[:n], err)
	}
	d.waitMetric(`sockshaper_inbound_refused_total{reason="udp_unsolicited"}`, 0)

	stranger, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	for _, msg := range []string{"are you a supernode?", "relay this call"} {
		stranger.WriteToUDPAddrPort([]byte(msg), relay)
	}
	client.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, from, err := client.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("the stranger reached the client: %q from %v", buf[:n], from)
	}
	d.waitMetric(`sockshaper_inbound_refused_total{reason="udp_unsolicited"}`, 2)
}

// udpAssociateRaw logs in as alice, asks for an association with an unknown
// client address, and returns the relay address and the control connection,
// which stays open until the test ends.
func udpAssociateRaw(t *testing.T, proxyAddr string) (netip.AddrPort, net.Conn) {
	t.Helper()
	ctl, err := net.Dial("tcp", proxyAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close() })
	ctl.SetDeadline(time.Now().Add(5 * time.Second))
	msg := []byte{5, 1, 2, 1, 5}
	msg = append(append(msg, "alice"...), byte(len(password)))
	msg = append(append(msg, password...), 5, 3, 0, 1, 0, 0, 0, 0, 0, 0)
	ctl.Write(msg)
	got := make([]byte, 4+10)
	if _, err := io.ReadFull(ctl, got); err != nil || !bytes.Equal(got[:6], []byte{5, 2, 1, 0, 5, 0}) {
		t.Fatalf("associate: %x, %v", got, err)
	}
	ctl.SetDeadline(time.Time{})
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(got[8:12])), uint16(got[12])<<8|uint16(got[13])), ctl
}

// udpRequestHeader is the RFC 1928 UDP request header for an IPv4 destination.
func udpRequestHeader(dst netip.AddrPort) []byte {
	a := dst.Addr().As4()
	return append(append([]byte{0, 0, 0, 1}, a[:]...), byte(dst.Port()>>8), byte(dst.Port()))
}

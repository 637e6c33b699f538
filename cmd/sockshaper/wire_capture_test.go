package main

import (
	be "encoding/binary" // "binary" is the built daemon
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// wireCapture reads every IPv4 and IPv6 packet on the loopback interface (an
// AF_PACKET socket, as tcpdump -i lo does; it needs CAP_NET_RAW) and keeps the
// DSCP byte of the TCP segments with payload of one connection direction: the
// mark as it is on the wire, whatever the sockets say.
type wireCapture struct {
	fd       int
	src, dst uint16 // TCP ports of the direction kept
	mu       sync.Mutex
	tos      []byte // TOS (IPv4) or traffic class (IPv6) of each segment kept
	done     chan struct{}
}

// ethPAll is htons(ETH_P_ALL): every protocol.
const ethPAll = 0x0300

// startWireCapture captures the TCP segments with payload from port src to
// port dst on lo until the test ends. Without CAP_NET_RAW it skips the test,
// except in CI, where it fails.
func startWireCapture(t *testing.T, src, dst uint16) *wireCapture {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_DGRAM, ethPAll)
	if errors.Is(err, syscall.EPERM) && os.Getenv("CI") == "" {
		t.Skip("no packet socket (needs CAP_NET_RAW): the marks on the wire go unchecked")
	}
	if err != nil {
		t.Fatalf("packet socket: %v", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: ethPAll, Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		t.Fatalf("bind the packet socket to lo: %v", err)
	}
	// Other tests load lo too: a large buffer and a reader that never waits
	// keep the kernel from dropping the segments this test looks for.
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<20)
	tv := syscall.Timeval{Usec: 100_000}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	c := &wireCapture{fd: fd, src: src, dst: dst, done: make(chan struct{})}
	stop := make(chan struct{})
	go c.read(stop)
	t.Cleanup(func() { close(stop); <-c.done; syscall.Close(fd) })
	return c
}

func (c *wireCapture) read(stop <-chan struct{}) {
	defer close(c.done)
	buf := make([]byte, 1<<16)
	for {
		select {
		case <-stop:
			return
		default:
		}
		n, _, err := syscall.Recvfrom(c.fd, buf, 0)
		if err != nil || n <= 0 {
			continue
		}
		if tos, ok := c.match(buf[:n]); ok {
			c.mu.Lock()
			c.tos = append(c.tos, tos)
			c.mu.Unlock()
		}
	}
}

// match returns the DSCP byte of an IP packet that is a TCP segment with
// payload from c.src to c.dst.
func (c *wireCapture) match(p []byte) (byte, bool) {
	if len(p) < 1 {
		return 0, false
	}
	var tos byte
	var tcp []byte
	switch p[0] >> 4 {
	case 4:
		ihl := int(p[0]&0x0f) * 4
		total := int(be.BigEndian.Uint16(p[2:4]))
		if len(p) < ihl+20 || p[9] != syscall.IPPROTO_TCP || total > len(p) {
			return 0, false
		}
		tos, tcp = p[1], p[ihl:total]
	case 6:
		if len(p) < 40+20 || p[6] != syscall.IPPROTO_TCP {
			return 0, false
		}
		end := 40 + int(be.BigEndian.Uint16(p[4:6]))
		if end > len(p) {
			return 0, false
		}
		tos, tcp = p[0]<<4|p[1]>>4, p[40:end]
	default:
		return 0, false
	}
	sport, dport := be.BigEndian.Uint16(tcp[0:2]), be.BigEndian.Uint16(tcp[2:4])
	if sport != c.src || dport != c.dst || len(tcp) <= int(tcp[12]>>4)*4 {
		return 0, false
	}
	return tos, true
}

// marks waits until at least n segments were captured (or 5 s passed) and
// returns the DSCP bytes of all captured so far.
func (c *wireCapture) marks(n int) []byte {
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		got := append([]byte(nil), c.tos...)
		c.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

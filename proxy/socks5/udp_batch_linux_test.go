//go:build linux

package socks5

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/sockshaper/sockshaper/internal/dscp"
)

// TestUDPReaderBatch queues datagrams from two sources on a relay socket and
// checks that one read takes them all, in order, each with its size and source
// and its payload behind room for a reply header; and that a lone datagram is
// returned at once, not held back to fill a batch.
func TestUDPReaderBatch(t *testing.T) {
	relay := listenUDP(t, "127.0.0.1:0")
	r, err := newUDPReader(relay)
	if err != nil {
		t.Fatal(err)
	}
	srcs := [2]*net.UDPConn{listenUDP(t, "127.0.0.1:0"), listenUDP(t, "127.0.0.1:0")}
	dst := addrPortOfUDP(relay)
	const queued = udpBatchLen + 3 // more than one batch holds
	var want []string
	for i := range queued {
		p := fmt.Sprintf("datagram %d %s", i, bytes.Repeat([]byte("x"), i*100))
		if _, err := srcs[i%2].WriteToUDPAddrPort([]byte(p), dst); err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
	}
	time.Sleep(50 * time.Millisecond) // loopback delivers at once; this is margin
	var got []string
	var froms []netip.AddrPort
	for reads := 0; len(got) < queued; reads++ {
		if reads == 2 {
			t.Fatalf("two reads took %d of %d queued datagrams, want all", len(got), queued)
		}
		b, err := r.read()
		if err != nil {
			t.Fatal(err)
		}
		if reads == 0 && b.n != udpBatchLen {
			t.Errorf("first read took %d datagrams, want a full batch of %d", b.n, udpBatchLen)
		}
		for i := range b.n {
			got = append(got, string(b.bufs[i][maxReplyHeader:][:b.size[i]]))
			froms = append(froms, b.from[i])
		}
		r.release()
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("datagram %d: %.20q, want %.20q", i, got[i], want[i])
		}
		if wantFrom := addrPortOfUDP(srcs[i%2]); froms[i] != wantFrom {
			t.Errorf("datagram %d from %v, want %v", i, froms[i], wantFrom)
		}
	}
	// A lone datagram comes back alone and at once.
	srcs[0].WriteToUDPAddrPort([]byte("lone"), dst)
	start := time.Now()
	b, err := r.read()
	if err != nil {
		t.Fatal(err)
	}
	if b.n != 1 || string(b.bufs[0][maxReplyHeader:][:b.size[0]]) != "lone" {
		t.Errorf("lone datagram: read %d datagrams, first %q", b.n, b.bufs[0][maxReplyHeader:][:b.size[0]])
	}
	r.release()
	if d := time.Since(start); d > time.Second {
		t.Errorf("a lone datagram took %v to read", d)
	}
}

// TestUDPWriterBatch sends one batch that mixes classes and holds two datagrams
// that cannot go: one to the other address family (refused before the system
// call) and one too large for IPv4 (refused by the kernel in the middle of the
// sendmmsg). Each of those gets its own error; every other datagram arrives, in
// order, with its class's mark.
func TestUDPWriterBatch(t *testing.T) {
	relay := listenUDP(t, "127.0.0.1:0")
	peer := listenUDP(t, "127.0.0.1:0")
	if err := setRecvTOS(peer); err != nil {
		t.Fatal(err)
	}
	w, err := newUDPWriter(relay)
	if err != nil {
		t.Fatal(err)
	}
	dst, v6 := addrPortOfUDP(peer), netip.MustParseAddrPort("[2001:db8::1]:9")
	ef, cs1 := dscp.New(46), dscp.New(8)
	huge := make([]byte, 65508) // one byte over what an IPv4 datagram carries
	sends := []struct {
		s       udpSend
		wantErr bool
	}{
		{udpSend{b: []byte("0 unmarked"), dst: dst}, false},
		{udpSend{b: []byte("1 ef"), dst: dst, mark: ef}, false},
		{udpSend{b: []byte("2 v6"), dst: v6}, true},
		{udpSend{b: []byte("3 cs1"), dst: dst, mark: cs1}, false},
		{udpSend{b: huge, dst: dst}, true},
		{udpSend{b: []byte("5 ef"), dst: dst, mark: ef}, false},
		{udpSend{b: []byte("6 unmarked"), dst: dst}, false},
	}
	b := newUDPBatch()
	for _, s := range sends {
		b.queue(s.s)
	}
	w.send(b)
	var want []arrival
	for i, s := range sends {
		if err := b.sends[i].err; (err != nil) != s.wantErr {
			t.Errorf("datagram %d: error %v, want error %v", i, err, s.wantErr)
		}
		if !s.wantErr {
			want = append(want, arrival{string(s.s.b), s.s.mark.DSCP().TOS()})
		}
	}
	if err := b.sends[2].err; !errors.Is(err, errFamily) {
		t.Errorf("IPv6 destination from an IPv4 socket: %v, want %v", err, errFamily)
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	for i, w := range want {
		got, err := readWithTOS(peer)
		if err != nil {
			t.Fatalf("datagram %d of %d: %v", i, len(want), err)
		}
		if got != w {
			t.Errorf("arrival %d: %+v, want %+v", i, got, w)
		}
	}
}

// setRecvTOS makes c report the TOS byte of each IPv4 datagram it receives.
func setRecvTOS(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVTOS, 1)
	}); err != nil {
		return err
	}
	return serr
}

// arrival is a datagram as a receiver saw it: its payload and TOS byte.
type arrival struct {
	payload string
	tos     int
}

// readWithTOS reads one datagram of a setRecvTOS socket, with its TOS byte.
func readWithTOS(c *net.UDPConn) (arrival, error) {
	var a arrival
	buf, oob := make([]byte, 1500), make([]byte, 128)
	n, oobn, _, _, err := c.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		return a, err
	}
	a.payload = string(buf[:n])
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return a, err
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.IPPROTO_IP && m.Header.Type == syscall.IP_TOS && len(m.Data) >= 1 {
			a.tos = int(m.Data[0])
			return a, nil
		}
	}
	return a, errors.New("no TOS in the control messages")
}

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

// readerUnderTest runs a udpReader on a relay socket of its own and hands each
// batch it relays, copied, to batches.
type readerUnderTest struct {
	relay   *net.UDPConn
	batches chan []udpDatagram
	during  func(b *udpBatch, relay netip.AddrPort) // called inside relay, before it returns
	done    chan error
}

// udpDatagram is a datagram as the reader handed it on.
type udpDatagram struct {
	payload string
	from    netip.AddrPort
}

func startReader(t *testing.T, during func(*udpBatch, netip.AddrPort)) *readerUnderTest {
	t.Helper()
	u := &readerUnderTest{relay: listenUDP(t, "127.0.0.1:0"), batches: make(chan []udpDatagram, 64), during: during, done: make(chan error, 1)}
	dst := addrPortOfUDP(u.relay)
	r, err := newUDPReader(u.relay, func(b *udpBatch) {
		var ds []udpDatagram
		for i := range b.n {
			ds = append(ds, udpDatagram{string(b.bufs[i][maxReplyHeader:][:b.size[i]]), b.from[i]})
		}
		u.batches <- ds
		if u.during != nil {
			u.during(b, dst)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() { u.done <- r.run() }()
	t.Cleanup(func() {
		u.relay.Close()
		select {
		case <-u.done:
		case <-time.After(5 * time.Second):
			t.Error("the reader did not end when its socket closed")
		}
	})
	return u
}

// next returns the next batch the reader relayed, failing after a second: a
// datagram waiting longer than that for its turn is a lost wake-up.
func (u *readerUnderTest) next(t *testing.T) []udpDatagram {
	t.Helper()
	select {
	case ds := <-u.batches:
		return ds
	case <-time.After(time.Second):
		t.Fatal("no batch relayed within a second")
		return nil
	}
}

// TestUDPReaderBatch queues datagrams from two sources on a relay socket before
// its reader starts and checks that one batch takes a full batch's worth, in
// order, each with its size and source and its payload behind room for a reply
// header, and the next batch the rest.
func TestUDPReaderBatch(t *testing.T) {
	srcs := [2]*net.UDPConn{listenUDP(t, "127.0.0.1:0"), listenUDP(t, "127.0.0.1:0")}
	relay := listenUDP(t, "127.0.0.1:0")
	dst := addrPortOfUDP(relay)
	const queued = udpBatchLen + 3 // more than one batch holds
	var want []udpDatagram
	for i := range queued {
		p := fmt.Sprintf("datagram %d %s", i, bytes.Repeat([]byte("x"), i*100))
		if _, err := srcs[i%2].WriteToUDPAddrPort([]byte(p), dst); err != nil {
			t.Fatal(err)
		}
		want = append(want, udpDatagram{p, addrPortOfUDP(srcs[i%2])})
	}
	time.Sleep(50 * time.Millisecond) // loopback delivers at once; this is margin
	got := make(chan []udpDatagram, 4)
	r, err := newUDPReader(relay, func(b *udpBatch) {
		var ds []udpDatagram
		for i := range b.n {
			ds = append(ds, udpDatagram{string(b.bufs[i][maxReplyHeader:][:b.size[i]]), b.from[i]})
		}
		got <- ds
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.run() }()
	var first, second []udpDatagram
	for i, b := range []*[]udpDatagram{&first, &second} {
		select {
		case *b = <-got:
		case <-time.After(time.Second):
			t.Fatalf("batch %d not relayed within a second", i+1)
		}
	}
	if len(first) != udpBatchLen || len(second) != queued-udpBatchLen {
		t.Errorf("batches of %d and %d datagrams, want %d and %d", len(first), len(second), udpBatchLen, queued-udpBatchLen)
	}
	for i, d := range append(first, second...) {
		if i < len(want) && d != want[i] {
			t.Errorf("datagram %d: %.20q from %v, want %.20q from %v", i, d.payload, d.from, want[i].payload, want[i].from)
		}
	}
	relay.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("run after close: %v, want %v", err, net.ErrClosed)
	}
}

// TestUDPReaderWakes checks the reader's waits: a lone datagram is relayed at
// once, alone (no batch is waited for); one that arrives later still wakes the
// reader after a short batch sent it back to waiting without a read; and so
// does one that arrives while a batch is being relayed, which is the wake-up
// a fresh wait would forget.
func TestUDPReaderWakes(t *testing.T) {
	src := listenUDP(t, "127.0.0.1:0")
	u := startReader(t, func(b *udpBatch, relay netip.AddrPort) {
		if string(b.bufs[0][maxReplyHeader:][:b.size[0]]) == "during" {
			return
		}
		// Inside the relay of a short batch: the queue was empty when read.
		src.WriteToUDPAddrPort([]byte("during"), relay)
		time.Sleep(10 * time.Millisecond) // it is queued before relay returns
	})
	dst := addrPortOfUDP(u.relay)
	src.WriteToUDPAddrPort([]byte("lone"), dst)
	if ds := u.next(t); len(ds) != 1 || ds[0].payload != "lone" {
		t.Fatalf("lone datagram: %+v", ds)
	}
	if ds := u.next(t); len(ds) != 1 || ds[0].payload != "during" {
		t.Fatalf("datagram sent while the batch before was relayed: %+v", ds)
	}
	time.Sleep(100 * time.Millisecond)
	src.WriteToUDPAddrPort([]byte("later"), dst)
	if ds := u.next(t); len(ds) != 1 || ds[0].payload != "later" {
		t.Fatalf("datagram after a pause: %+v", ds)
	}
	if ds := u.next(t); len(ds) != 1 || ds[0].payload != "during" {
		t.Fatalf("datagram sent while the batch before was relayed: %+v", ds)
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
